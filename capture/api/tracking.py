"""Tracking doors: `POST /api/v1/tracking/` issues the open pixel and click URLs for a message
about to be sent (the Outlook add-in's compose pane calls it), `GET /api/v1/tracking-events/`
lists the opens and clicks the caller may see. capture/tracking/service.py holds the rules;
docs/governance.md "Tracking" explains them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import django_filters
from django.db.models import Exists, OuterRef
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from capture.mime.ids import normalize_message_id
from capture.models import TrackedContact, TrackingEvent
from capture.tracking import service
from capture.tracking.tokens import MAX_URL_CHARS
from core.api import FilterBackend, FilterSet, IdFilter, StrictSerializer, error_response
from crm.addresses import InvalidAddress, normalize_address
from crm.auth import ScopePermission
from crm.models import ApiToken
from governance.audit import actor_from_request, client_address

READ, WRITE = ApiToken.Scope.CAPTURE_READ.value, ApiToken.Scope.CAPTURE_WRITE.value


def clean_link(value: str) -> str:
    """An absolute http(s) URL without spaces or control characters (the redirect target)."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise serializers.ValidationError("A URL has no spaces or control characters.")
    try:
        parts = urlsplit(value)
    except ValueError as e:
        raise serializers.ValidationError("Not a URL.") from e
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("Give an absolute http:// or https:// URL.")
    return value


class TrackingRequestSerializer(StrictSerializer):
    message_id = serializers.CharField(
        max_length=998, help_text="The Message-ID the mail will be sent with."
    )
    subject = serializers.CharField(required=False, allow_blank=True, max_length=998)
    recipients = serializers.ListField(
        child=serializers.CharField(max_length=320),
        min_length=1,
        max_length=service.MAX_RECIPIENTS,
        help_text="Every To, Cc and Bcc address.",
    )
    links = serializers.ListField(
        child=serializers.CharField(max_length=MAX_URL_CHARS),
        required=False,
        max_length=service.MAX_LINKS,
        help_text="The URLs in the body to track clicks of.",
    )

    def validate_message_id(self, value: str) -> str:
        normal = normalize_message_id(value)
        if not normal:
            raise serializers.ValidationError("Not a Message-ID (left@right).")
        return normal

    def validate_recipients(self, value: list[str]) -> list[str]:
        out, errors = [], {}
        for i, given in enumerate(value):
            try:
                out.append(normalize_address(given))
            except InvalidAddress as e:
                errors[i] = [f"Not an e-mail address ({e})."]
        if errors:
            raise serializers.ValidationError(errors)
        return list(dict.fromkeys(out))

    def validate_links(self, value: list[str]) -> list[str]:
        out, errors = [], {}
        for i, given in enumerate(value):
            try:
                out.append(clean_link(given))
            except serializers.ValidationError as e:
                errors[i] = e.detail
        if errors:
            raise serializers.ValidationError(errors)
        return out


class RecipientOutcomeSerializer(serializers.Serializer):
    address = serializers.CharField()
    tracked = serializers.BooleanField()
    reason = serializers.CharField(help_text="`ok`, or why this recipient is not tracked.")
    contacts = serializers.ListField(child=serializers.IntegerField(), source="contact_ids")
    internal = serializers.BooleanField()


class TrackedLinkSerializer(serializers.Serializer):
    url = serializers.CharField()
    tracked_url = serializers.CharField()


class TrackingResponseSerializer(serializers.Serializer):
    message_id = serializers.CharField()
    tracked = serializers.BooleanField()
    reason = serializers.CharField(
        help_text="`ok`, `no_eligible_recipient` or `recipient_refused` (one of several "
        "recipients may not be tracked, so the mail is not)."
    )
    mode = serializers.CharField(
        allow_null=True, help_text="`recipient` (attributed) or `anonymous` (several recipients)."
    )
    tracked_message = serializers.IntegerField(allow_null=True, source="tracked_message.pk")
    open_pixel_url = serializers.CharField(allow_null=True, source="open_url")
    links = TrackedLinkSerializer(many=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    recipients = RecipientOutcomeSerializer(many=True)
    refused = RecipientOutcomeSerializer(many=True)


class TrackingView(APIView):
    """Issue tracking for a message about to be sent, only if its recipients allow it: one
    recipient is tracked by name, several anonymously; recipients not tracked are listed with
    the reason. `tracked: false` is a normal answer (200), not an error."""

    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = WRITE

    @extend_schema(
        request=TrackingRequestSerializer,
        responses={
            200: TrackingResponseSerializer,
            409: error_response("Another user was issued tracking for this Message-ID."),
        },
    )
    def post(self, request):
        body = TrackingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            result = service.issue_tracking(
                request.user,
                message_id=data["message_id"],
                recipients=data["recipients"],
                links=data.get("links", []),
                subject=data.get("subject", ""),
                request=request,
                actor=actor_from_request(request),
                channel="api",
                address=client_address(request),
            )
        except service.TrackingConflict:
            return Response(
                {"detail": "This Message-ID is tracked by another user.", "code": "conflict"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(TrackingResponseSerializer(result).data)


# --- summaries (on the email detail and the timeline) ---------------------------------------


class LinkClicksSerializer(serializers.Serializer):
    url = serializers.CharField()
    clicks = serializers.IntegerField()
    machine_clicks = serializers.IntegerField()


class TrackingSummarySerializer(serializers.Serializer):
    """Opens and clicks of a tracked message; `machine_*` (included in the totals) are the
    likely machine ones: privacy proxies, link scanners, too soon after sending."""

    tracked_message = serializers.IntegerField(source="tracked_id")
    mode = serializers.CharField()
    issued_at = serializers.DateTimeField()
    opens = serializers.IntegerField()
    machine_opens = serializers.IntegerField()
    clicks = serializers.IntegerField()
    machine_clicks = serializers.IntegerField()
    first_open_at = serializers.DateTimeField(allow_null=True)
    last_open_at = serializers.DateTimeField(allow_null=True)
    last_click_at = serializers.DateTimeField(allow_null=True)
    links = LinkClicksSerializer(many=True)


# --- events --------------------------------------------------------------------------------


class TrackingEventSerializer(serializers.ModelSerializer):
    message_id = serializers.CharField(source="tracked.message_id")
    mode = serializers.CharField(source="tracked.mode")
    url = serializers.SerializerMethodField()

    class Meta:
        model = TrackingEvent
        fields = (
            "id", "tracked", "message_id", "mode", "kind", "link", "url", "occurred_at",
            "machine", "machine_reason", "user_agent",
        )  # fmt: skip

    def get_url(self, obj: TrackingEvent) -> str | None:
        links = obj.tracked.links or []
        if obj.link is None or obj.link >= len(links):
            return None
        return links[obj.link]


class TrackingEventFilter(FilterSet):
    message = IdFilter(field_name="tracked__message__pk", label="Captured email id")
    message_id = django_filters.CharFilter(method="by_message_id", label="Message-ID")
    tracked = IdFilter(field_name="tracked")
    contact = IdFilter(method="by_contact", label="Contact (events attributed to them)")
    kind = django_filters.ChoiceFilter(choices=TrackingEvent.Kind.choices)
    machine = django_filters.BooleanFilter()
    after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = TrackingEvent
        fields = ("kind", "machine")

    def by_message_id(self, qs, name, value):
        return qs.filter(tracked__message_id=normalize_message_id(value) or value[:998])

    def by_contact(self, qs, name, value):
        """Events of one-recipient messages issued for this contact (anonymous ones are
        attributed to nobody)."""
        attributed = TrackedContact.objects.filter(tracked=OuterRef("tracked_id"), contact=value)
        return qs.filter(tracked__mode="recipient").filter(Exists(attributed))


class TrackingEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Opens and clicks of tracked mail the caller may see, newest first. `machine` marks the
    likely machine ones (privacy proxies, link scanners, too soon after sending)."""

    serializer_class = TrackingEventSerializer
    queryset = TrackingEvent.objects.none()  # the real one is per user (get_queryset)
    filterset_class = TrackingEventFilter
    filter_backends = [FilterBackend]
    permission_classes = [ScopePermission]
    read_scope = READ
    write_scope = None

    def get_queryset(self):
        # Pages are newest first by id (the cursor pagination's order): events are inserted
        # as they happen.
        return service.visible_events(self.request.user).select_related("tracked")


def register(router: DefaultRouter) -> None:
    router.register("tracking-events", TrackingEventViewSet, basename="tracking-event")


urlpatterns = [path("tracking/", TrackingView.as_view(), name="tracking")]
