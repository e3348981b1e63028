"""`/api/v1/{contacts,organizations,items}/{id}/timeline/`: a record's mail and meetings,
newest first, one entry a thread, pinned threads first (capture/timeline.py says why and how
it stays cheap). `POST .../timeline/pins/` ({"thread": id} or {"email": id}) pins,
`DELETE .../timeline/pins/{thread_id}/` unpins; both are audited by the service.

Registered here, not in crm/api: crm never imports capture (docs/architecture.md, "Layers").
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from capture import timeline as service
from capture.api.tracking import TrackingSummarySerializer
from core.api import IdField, StrictSerializer
from crm.auth import ScopePermission
from crm.models import ApiToken, Contact, Item, Organization
from governance.audit import actor_from_request, client_address

RECORD_MODELS = {"contacts": Contact, "organizations": Organization, "items": Item}


class MeetingSerializer(serializers.Serializer):
    summary = serializers.CharField()
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)


class TimelineEmailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    subject = serializers.CharField()
    date = serializers.DateTimeField()
    direction = serializers.CharField()
    from_address = serializers.CharField()
    from_name = serializers.CharField()
    has_attachments = serializers.BooleanField()
    categories = serializers.ListField(child=serializers.CharField())


class TimelineEntrySerializer(serializers.Serializer):
    thread = serializers.IntegerField(source="thread_id")
    thread_subject = serializers.CharField()
    message_count = serializers.IntegerField()
    last_at = serializers.DateTimeField(allow_null=True)
    pinned = serializers.BooleanField()
    email = TimelineEmailSerializer(allow_null=True)
    meeting = MeetingSerializer(allow_null=True)
    tracking = TrackingSummarySerializer(
        allow_null=True, help_text="Opens and clicks of the shown message, if sent tracked."
    )


class TimelinePageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="URL of the next page, or null.")
    results = TimelineEntrySerializer(many=True)


class PinSerializer(StrictSerializer):
    thread = IdField(required=False)
    email = IdField(required=False)

    def validate(self, attrs):
        if ("thread" in attrs) == ("email" in attrs):
            raise serializers.ValidationError("Give a thread or an email (one of them).")
        return attrs


class TimelineBase(APIView):
    permission_classes = [ScopePermission]
    read_scope = ApiToken.Scope.CAPTURE_READ.value
    write_scope = ApiToken.Scope.CAPTURE_WRITE.value
    records = ""  # set per route

    def record(self, pk: int):
        return get_object_or_404(RECORD_MODELS[self.records], pk=pk)

    def audit(self, request) -> dict:
        return {
            "actor": actor_from_request(request),
            "channel": "api",
            "address": client_address(request),
        }


class TimelineView(TimelineBase):
    """The record's timeline, newest first; `?cursor=` from `next`, `?size=` 1-100 (25)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", str, required=False),
            OpenApiParameter("size", int, required=False),
        ],
        responses=TimelinePageSerializer,
    )
    def get(self, request, pk: int):
        record = self.record(pk)
        raw_size = request.query_params.get("size", str(service.DEFAULT_SIZE))
        try:
            size = int(raw_size)
        except ValueError:
            raise ValidationError({"size": ["A whole number."]}) from None
        try:
            page = service.timeline_page(
                record, request.user, request.query_params.get("cursor") or None, size
            )
        except service.TimelineRejected as e:
            if e.code != "bad_size":  # a tampered cursor: 404, as DRF's cursor pagination says
                raise NotFound("Invalid cursor") from e
            raise ValidationError({"size": [f"{e.code}: {e.detail}"]}) from e
        next_url = None
        if page.next_cursor:
            q = request.query_params.copy()
            q["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{q.urlencode()}")
        results = TimelineEntrySerializer(page.entries, many=True).data
        return Response({"next": next_url, "results": results})


class TimelinePinsView(TimelineBase):
    @extend_schema(request=PinSerializer, responses={201: None})
    def post(self, request, pk: int):
        record = self.record(pk)
        serializer = PinSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        try:
            pin = service.pin_timeline_entry(
                record,
                request.user,
                thread_id=v.get("thread"),
                email_id=v.get("email"),
                **self.audit(request),
            )
        except service.TimelineRejected as e:
            if e.code == "not_found":
                raise NotFound(e.detail) from e
            raise ValidationError({"non_field_errors": [f"{e.code}: {e.detail}"]}) from e
        body = {"thread": pin.thread_id, "email": pin.email_id, "created": pin.created}
        return Response(body, status=status.HTTP_201_CREATED)


class TimelinePinView(TimelineBase):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int, thread_id: int):
        record = self.record(pk)
        if not service.unpin_timeline_entry(record, thread_id=thread_id, **self.audit(request)):
            raise NotFound("This thread is not pinned to this record.")
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = []
for prefix in RECORD_MODELS:
    single = prefix[:-1]
    urlpatterns += [
        path(
            f"{prefix}/<dbid:pk>/timeline/",
            TimelineView.as_view(records=prefix),
            name=f"{single}-timeline",
        ),
        path(
            f"{prefix}/<dbid:pk>/timeline/pins/",
            TimelinePinsView.as_view(records=prefix),
            name=f"{single}-timeline-pins",
        ),
        path(
            f"{prefix}/<dbid:pk>/timeline/pins/<dbid:thread_id>/",
            TimelinePinView.as_view(records=prefix),
            name=f"{single}-timeline-pin",
        ),
    ]


def register(router) -> None:
    """Nothing on the router: the routes hang under the CRM records (urlpatterns)."""
