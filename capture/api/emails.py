"""Read side of captured mail: emails, threads and attachment downloads.

Bodies are returned only on the detail view (audited as a body view); HTML is sanitised
with nh3 before it leaves the server. Attachments download with `Content-Disposition:
attachment` and `nosniff`, so a browser never renders captured content as a page.
"""

from __future__ import annotations

import django_filters
import nh3
from django.db.models import Prefetch, Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.routers import DefaultRouter

from capture import storage
from capture.api.tracking import TrackingSummarySerializer
from capture.links import describe_link
from capture.models import Attachment, Capture, EmailMessage, Participant, Thread, ThreadLink
from capture.tracking.service import summary as tracking_summary
from capture.visibility import visible_emails, visible_threads
from core.api import FilterBackend, FilterSet, IdFilter
from crm.auth import ScopePermission
from crm.models import ApiToken
from governance.audit import actor_from_request, client_address, record_event


class ParticipantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Participant
        fields = (
            "role",
            "address",
            "name",
            "match",
            "contact",
            "organization",
            "user",
            "candidates",
        )


class AttachmentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = (
            "id",
            "filename",
            "content_type",
            "size",
            "sha256",
            "inline",
            "dropped",
            "download_url",
        )

    def get_download_url(self, obj: Attachment) -> str | None:
        if obj.blob_id is None:
            return None
        return f"/api/v1/emails/{obj.email_id}/attachments/{obj.pk}/"


class CaptureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Capture
        fields = ("id", "user", "channel", "source", "captured_at", "raw")


class ThreadLinkSerializer(serializers.ModelSerializer):
    why = serializers.SerializerMethodField()

    class Meta:
        model = ThreadLink
        fields = (
            "id", "source", "contact", "organization", "item", "created_by", "created",
            "rule", "strategy", "matched_address", "reference", "why",
        )  # fmt: skip

    def get_why(self, obj: ThreadLink) -> str:
        return describe_link(obj)


class EmailListSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailMessage
        fields = (
            "id",
            "message_id",
            "thread",
            "kind",
            "subject",
            "date",
            "direction",
            "from_address",
            "from_name",
            "stored",
            "body_truncated",
            "has_attachments",
            "auto_generated",
            "categories",
            "created",
        )


class EmailDetailSerializer(EmailListSerializer):
    participants = ParticipantSerializer(many=True, read_only=True)
    attachments = AttachmentSerializer(many=True, read_only=True)
    captures = CaptureSerializer(many=True, read_only=True)
    links = serializers.SerializerMethodField()
    unmatched_references = serializers.SerializerMethodField()
    html_body = serializers.SerializerMethodField()
    tracking = serializers.SerializerMethodField()

    class Meta(EmailListSerializer.Meta):
        fields = (
            *EmailListSerializer.Meta.fields,
            "in_reply_to",
            "references",
            "text_body",
            "html_body",
            "date_flag",
            "forwarded_flag",
            "defects",
            "participants",
            "attachments",
            "captures",
            "links",
            "unmatched_references",
            "tracking",
        )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_unmatched_references(self, obj: EmailMessage) -> list[str]:
        return [r.reference for r in obj.unmatched_references.all()]

    @extend_schema_field(TrackingSummarySerializer(allow_null=True))
    def get_tracking(self, obj: EmailMessage) -> dict | None:
        """Opens and clicks, when the message was sent tracked (capture/tracking/)."""
        found = tracking_summary(obj.message_id)
        return TrackingSummarySerializer(found).data if found else None

    def get_html_body(self, obj: EmailMessage) -> str:
        return nh3.clean(obj.html_body) if obj.html_body else ""

    @extend_schema(responses=ThreadLinkSerializer(many=True))
    def get_links(self, obj: EmailMessage) -> list[dict]:
        return ThreadLinkSerializer(obj.thread.links.all(), many=True).data


class ThreadSerializer(serializers.ModelSerializer):
    links = ThreadLinkSerializer(many=True, read_only=True)
    messages = EmailListSerializer(many=True, read_only=True)

    class Meta:
        model = Thread
        fields = (
            "id",
            "subject",
            "owner",
            "first_at",
            "last_at",
            "message_count",
            "private",
            "links",
            "messages",
        )


class EmailFilter(FilterSet):
    contact = IdFilter(method="by_contact")
    organization = IdFilter(method="by_organization")
    item = IdFilter(field_name="thread__links__item")
    thread = IdFilter(field_name="thread")
    direction = django_filters.ChoiceFilter(choices=EmailMessage.Direction.choices)
    kind = django_filters.ChoiceFilter(choices=EmailMessage.Kind.choices)
    channel = django_filters.CharFilter(field_name="captures__channel")
    date_after = django_filters.IsoDateTimeFilter(field_name="date", lookup_expr="gte")
    date_before = django_filters.IsoDateTimeFilter(field_name="date", lookup_expr="lt")
    search = django_filters.CharFilter(method="by_search")

    class Meta:
        model = EmailMessage
        fields = ("thread", "direction", "kind")

    def by_contact(self, qs, name, value):
        return qs.filter(
            Q(participants__contact=value) | Q(thread__links__contact=value)
        ).distinct()

    def by_organization(self, qs, name, value):
        return qs.filter(
            Q(participants__organization=value) | Q(thread__links__organization=value)
        ).distinct()

    def by_search(self, qs, name, value):
        value = value.strip()
        if not value:
            return qs
        return qs.filter(
            Q(subject__icontains=value)
            | Q(from_address__icontains=value)
            | Q(participants__address__icontains=value)
        ).distinct()


class CaptureReadScope:
    permission_classes = [ScopePermission]
    read_scope = ApiToken.Scope.CAPTURE_READ.value
    write_scope = None


class EmailViewSet(CaptureReadScope, viewsets.ReadOnlyModelViewSet):
    """Captured messages the caller may see; `search` matches subject and addresses."""

    queryset = EmailMessage.objects.none()  # the real one is per user (get_queryset)
    filterset_class = EmailFilter
    filter_backends = [FilterBackend]

    def get_queryset(self):
        qs = visible_emails(self.request.user).select_related("thread")
        if self.action == "retrieve":
            qs = qs.prefetch_related(
                "participants",
                "attachments",
                "captures",
                "unmatched_references",
                Prefetch(
                    "thread__links",
                    queryset=ThreadLink.objects.select_related("rule", "created_by"),
                ),
            )
        return qs

    def get_serializer_class(self):
        return EmailDetailSerializer if self.action == "retrieve" else EmailListSerializer

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        record_event(
            "email.body_viewed",
            actor=actor_from_request(request),
            object_type="capture.emailmessage",
            object_id=kwargs.get("pk"),
            channel="api",
            address=client_address(request),
        )
        return response

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path="attachments/<dbid:attachment_id>")
    def attachment(self, request, pk=None, attachment_id=None):
        email = get_object_or_404(self.get_queryset(), pk=pk)
        att = get_object_or_404(
            Attachment.objects.select_related("blob"), pk=attachment_id, email=email
        )
        if att.blob is None:
            from rest_framework.exceptions import NotFound

            raise NotFound(f"This attachment was not stored ({att.dropped or 'unknown'}).")
        record_event(
            "attachment.downloaded",
            actor=actor_from_request(request),
            obj=att,
            channel="api",
            address=client_address(request),
        )
        response = FileResponse(
            storage.open_blob(att.blob.storage_path),
            as_attachment=True,
            filename=att.filename or f"attachment-{att.pk}",
            content_type="application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


class ThreadViewSet(CaptureReadScope, viewsets.ReadOnlyModelViewSet):
    serializer_class = ThreadSerializer
    queryset = Thread.objects.none()  # the real one is per user (get_queryset)

    def get_queryset(self):
        user = self.request.user
        return visible_threads(user).prefetch_related(
            Prefetch("links", queryset=ThreadLink.objects.select_related("rule", "created_by")),
            Prefetch("messages", queryset=visible_emails(user).order_by("date")),
        )


def register(router: DefaultRouter) -> None:
    router.register("emails", EmailViewSet, basename="email")
    router.register("threads", ThreadViewSet, basename="thread")
