"""Meetings (one per calendar UID) the caller may see, and their occurrences in a window.

A meeting is visible when one of the messages that carried it is (capture/visibility.py), and
its `messages` list shows only those. Filters follow the emails': contact, organization and
item through the messages' participants and thread links, and a date window.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import django_filters
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from capture.api.emails import CaptureReadScope
from capture.meetings import MAX_OCCURRENCES, meeting_occurrences
from capture.models import Meeting, MeetingMessage, MeetingOverride
from capture.visibility import Viewer, sees_everything, subject_readable_emails, visible_emails
from core.api import FilterBackend, FilterSet, IdFilter
from crm.models import User

# The longest window one occurrences request may ask for.
MAX_WINDOW = timedelta(days=366)
DEFAULT_WINDOW = timedelta(days=90)


def visible_meetings(user: User | Viewer) -> QuerySet[Meeting]:
    """Meetings carried by at least one message whose subject the user may read (a meeting's
    summary, place and attendees say as much as a subject: capture/visibility.py)."""
    viewer = Viewer.of(user)
    carried = MeetingMessage.objects.filter(email__in=subject_readable_emails(viewer).values("pk"))
    return Meeting.objects.filter(pk__in=carried.values("meeting_id"))


class MeetingMessageSerializer(serializers.ModelSerializer):
    date = serializers.DateTimeField(source="email.date", read_only=True)

    class Meta:
        model = MeetingMessage
        fields = ("email", "date", "method", "sequence", "recurrence_id", "applied")


class MeetingOverrideSerializer(serializers.ModelSerializer):
    class Meta:
        model = MeetingOverride
        fields = ("recurrence_id", "status", "start", "end", "summary", "location", "sequence")


class MeetingListSerializer(serializers.ModelSerializer):
    recurring = serializers.SerializerMethodField()

    class Meta:
        model = Meeting
        fields = (
            "id",
            "uid",
            "status",
            "method",
            "summary",
            "organizer",
            "start",
            "end",
            "timezone",
            "recurring",
            "rrule",
            "location",
            "sequence",
            "updated",
        )

    def get_recurring(self, obj: Meeting) -> bool:
        return bool(obj.rrule or obj.rdate)


class MeetingDetailSerializer(MeetingListSerializer):
    messages = MeetingMessageSerializer(many=True, read_only=True)
    overrides = MeetingOverrideSerializer(many=True, read_only=True)

    class Meta(MeetingListSerializer.Meta):
        fields = (
            *MeetingListSerializer.Meta.fields,
            "attendees",
            "rdate",
            "exdate",
            "dtstamp",
            "overrides",
            "messages",
        )


class OccurrenceSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True)
    recurrence_id = serializers.DateTimeField(allow_null=True)
    summary = serializers.CharField()
    location = serializers.CharField()
    status = serializers.CharField()
    moved = serializers.BooleanField()


class OccurrencesSerializer(serializers.Serializer):
    meeting = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    truncated = serializers.BooleanField()
    occurrences = OccurrenceSerializer(many=True)


class WindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict) -> dict:
        start = attrs.get("start") or timezone.now()
        end = attrs.get("end") or start + DEFAULT_WINDOW
        if end <= start:
            raise ValidationError({"end": "must be after start"})
        if end - start > MAX_WINDOW:
            raise ValidationError({"end": f"the window is at most {MAX_WINDOW.days} days"})
        return {"start": start, "end": end}


class MeetingFilter(FilterSet):
    contact = IdFilter(method="by_contact")
    organization = IdFilter(method="by_organization")
    item = IdFilter(field_name="messages__email__thread__links__item")
    status = django_filters.ChoiceFilter(choices=Meeting.Status.choices)
    date_after = django_filters.IsoDateTimeFilter(method="after")
    date_before = django_filters.IsoDateTimeFilter(method="before")

    class Meta:
        model = Meeting
        fields = ("status",)

    def by_contact(self, qs, name, value):
        return qs.filter(
            Q(messages__email__participants__contact=value)
            | Q(messages__email__thread__links__contact=value)
        ).distinct()

    def by_organization(self, qs, name, value):
        return qs.filter(
            Q(messages__email__participants__organization=value)
            | Q(messages__email__thread__links__organization=value)
        ).distinct()

    def after(self, qs, name, value):
        """Ends at or after the time, or recurs (a series may have later occurrences)."""
        return qs.filter(Q(end__gte=value) | Q(end__isnull=True, start__gte=value) | ~Q(rrule=""))

    def before(self, qs, name, value):
        return qs.filter(start__lt=value)


class MeetingViewSet(CaptureReadScope, viewsets.ReadOnlyModelViewSet):
    """Meetings the caller may see, newest first; `occurrences` expands a series."""

    filterset_class = MeetingFilter
    filter_backends = [FilterBackend]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Meeting.objects.none()
        viewer = Viewer.of(self.request)
        qs = visible_meetings(viewer)
        if self.action == "retrieve":
            messages = MeetingMessage.objects.select_related("email").order_by("email__date")
            if not sees_everything(viewer):
                messages = messages.filter(email__in=visible_emails(viewer).values("pk"))
            qs = qs.prefetch_related(
                Prefetch("messages", queryset=messages),
                Prefetch("overrides", queryset=MeetingOverride.objects.order_by("recurrence_id")),
            )
        return qs

    def get_serializer_class(self):
        return MeetingDetailSerializer if self.action == "retrieve" else MeetingListSerializer

    @extend_schema(parameters=[WindowSerializer], responses=OccurrencesSerializer)
    @action(detail=True, methods=["get"])
    def occurrences(self, request, pk=None):
        """Occurrences overlapping [start, end) (default: now and the next 90 days)."""
        meeting = self.get_object()
        window = WindowSerializer(data=request.query_params)
        window.is_valid(raise_exception=True)
        start, end = window.validated_data["start"], window.validated_data["end"]
        found = meeting_occurrences(meeting, start, end, limit=MAX_OCCURRENCES + 1)
        data = {
            "meeting": meeting.pk,
            "start": start,
            "end": end,
            "truncated": len(found) > MAX_OCCURRENCES,
            "occurrences": [asdict(o) for o in found[:MAX_OCCURRENCES]],
        }
        return Response(OccurrencesSerializer(data).data)


def register(router: DefaultRouter) -> None:
    router.register("meetings", MeetingViewSet, basename="meeting")
