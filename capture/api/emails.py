"""Read side of captured mail: emails, threads and attachment downloads.

What the caller sees of each message is decided by capture.visibility (its role, the token's
scopes, the message's stored level, a private thread, the capturer's synced-mail setting):
a list holds only messages whose existence they may know, and a field they may not read
comes back null with `access.reason` saying why. Bodies are returned only on the detail view
(audited as `message.viewed` when a body is returned); HTML is sanitised with nh3 (no
remote images) before it leaves the server. Attachments download with `Content-Disposition:
attachment` and `nosniff`, so a browser never renders captured content as a page.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch, Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from capture import storage
from capture.api.tracking import TrackingSummarySerializer
from capture.links import describe_link
from capture.models import Attachment, Capture, EmailMessage, Participant, Thread, ThreadLink
from capture.tracking.service import summary as tracking_summary
from capture.viewer import sanitise_html
from capture.visibility import (
    NO_ACCESS,
    Access,
    Viewer,
    access_map,
    subject_readable_emails,
    thread_access,
    visible_emails,
    visible_threads,
)
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


class AccessSerializer(serializers.Serializer):
    subject = serializers.BooleanField()
    body = serializers.BooleanField()
    attachments = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why something is hidden; empty when nothing is.")


def access_of(serializer: serializers.Serializer, obj: EmailMessage) -> Access:
    """The caller's access to `obj`, decided once for the page (context["access"])."""
    return serializer.context.get("access", {}).get(obj.pk, NO_ACCESS)


class EmailListSerializer(serializers.ModelSerializer):
    subject = serializers.SerializerMethodField()
    access = serializers.SerializerMethodField()

    class Meta:
        model = EmailMessage
        fields = (
            "id",
            "message_id",
            "thread",
            "kind",
            "subject",
            "access",
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

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_subject(self, obj: EmailMessage) -> str | None:
        return obj.subject if access_of(self, obj).subject else None

    @extend_schema_field(AccessSerializer)
    def get_access(self, obj: EmailMessage) -> dict:
        return access_of(self, obj).as_dict()


class EmailDetailSerializer(EmailListSerializer):
    participants = ParticipantSerializer(many=True, read_only=True)
    attachments = serializers.SerializerMethodField()
    captures = CaptureSerializer(many=True, read_only=True)
    links = serializers.SerializerMethodField()
    unmatched_references = serializers.SerializerMethodField()
    text_body = serializers.SerializerMethodField()
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

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_text_body(self, obj: EmailMessage) -> str | None:
        return obj.text_body if access_of(self, obj).body else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_html_body(self, obj: EmailMessage) -> str | None:
        """Sanitised (capture/viewer.py); remote images left out: the API never makes a
        reader's client fetch from the sender."""
        if not access_of(self, obj).body:
            return None
        return sanitise_html(obj.html_body).html if obj.html_body else ""

    @extend_schema_field(AttachmentSerializer(many=True, allow_null=True))
    def get_attachments(self, obj: EmailMessage) -> list[dict] | None:
        if not access_of(self, obj).attachments:
            return None
        return AttachmentSerializer(obj.attachments.all(), many=True).data

    @extend_schema_field(TrackingSummarySerializer(allow_null=True))
    def get_tracking(self, obj: EmailMessage) -> dict | None:
        """Opens and clicks, when the message was sent tracked (capture/tracking/)."""
        found = tracking_summary(obj.message_id)
        return TrackingSummarySerializer(found).data if found else None

    @extend_schema(responses=ThreadLinkSerializer(many=True))
    def get_links(self, obj: EmailMessage) -> list[dict]:
        return ThreadLinkSerializer(obj.thread.links.all(), many=True).data


class ThreadSerializer(serializers.ModelSerializer):
    links = ThreadLinkSerializer(many=True, read_only=True)
    messages = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    access = serializers.SerializerMethodField()

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
            "access",
            "links",
            "messages",
        )

    def _access(self, obj: Thread) -> Access:
        amap = self.context.get("access", {})
        return thread_access(amap.get(m.pk, NO_ACCESS) for m in obj.messages.all())

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_subject(self, obj: Thread) -> str | None:
        return obj.subject if self._access(obj).subject else None

    @extend_schema_field(AccessSerializer)
    def get_access(self, obj: Thread) -> dict:
        return self._access(obj).as_dict()

    @extend_schema_field(EmailListSerializer(many=True))
    def get_messages(self, obj: Thread) -> list[dict]:
        return EmailListSerializer(obj.messages.all(), many=True, context=self.context).data


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
    search = django_filters.CharFilter(
        method="by_search",
        help_text="Subject (where readable), sender and participant addresses; never bodies.",
    )

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
        # A subject matches only where the caller may read it: a hit must not reveal it.
        readable = subject_readable_emails(Viewer.of(self.request)).values("pk")
        return qs.filter(
            Q(subject__icontains=value, pk__in=readable)
            | Q(from_address__icontains=value)
            | Q(participants__address__icontains=value)
        ).distinct()


class CaptureReadScope:
    permission_classes = [ScopePermission]
    read_scope = ApiToken.Scope.CAPTURE_READ.value
    write_scope = None


class EmailViewSet(CaptureReadScope, viewsets.ReadOnlyModelViewSet):
    """Captured messages the caller may see; `search` matches subject and addresses.

    Message bodies are never searched: with `MAILWARDEN_ENCRYPT_BODIES` on they are encrypted
    in the database (docs/operations.md), and subjects and addresses stay searchable.
    """

    queryset = EmailMessage.objects.none()  # the real one is per user (get_queryset)
    filterset_class = EmailFilter
    filter_backends = [FilterBackend]

    def get_queryset(self):
        qs = visible_emails(Viewer.of(self.request)).select_related("thread")
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

    def get_serializer(self, *args, **kwargs):
        """Every serializer gets the caller's access to the rows it renders (one decision
        for the page, a few queries whatever its size)."""
        rows = args[0] if args else kwargs.get("instance")
        if rows is not None:
            items = rows if isinstance(rows, list | tuple) else [rows]
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["access"] = access_map(Viewer.of(self.request), [e.pk for e in items])
        return super().get_serializer(*args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        email = self.get_object()
        serializer = self.get_serializer(email)
        data = serializer.data
        if data["text_body"] is not None:  # a body was returned: that is a view
            record_event(
                "message.viewed",
                actor=actor_from_request(request),
                obj=email,
                channel="api",
                address=client_address(request),
                detail={"part": "api_detail"},
            )
        return Response(data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path="attachments/<dbid:attachment_id>")
    def attachment(self, request, pk=None, attachment_id=None):
        email = get_object_or_404(self.get_queryset(), pk=pk)
        access = access_map(Viewer.of(request), [email.pk]).get(email.pk, NO_ACCESS)
        if not access.attachments:
            raise PermissionDenied(access.hidden())
        att = get_object_or_404(
            Attachment.objects.select_related("blob"), pk=attachment_id, email=email
        )
        if att.blob is None:
            raise NotFound(f"This attachment was not stored ({att.dropped or 'unknown'}).")
        record_event(
            "attachment.downloaded",
            actor=actor_from_request(request),
            obj=att,
            channel="api",
            address=client_address(request),
            detail={"email": email.pk},
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
        viewer = Viewer.of(self.request)
        return visible_threads(viewer).prefetch_related(
            Prefetch("links", queryset=ThreadLink.objects.select_related("rule", "created_by")),
            Prefetch("messages", queryset=visible_emails(viewer).order_by("date", "id")),
        )

    def get_serializer(self, *args, **kwargs):
        rows = args[0] if args else kwargs.get("instance")
        if rows is not None:
            threads = rows if isinstance(rows, list | tuple) else [rows]
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["access"] = access_map(
                Viewer.of(self.request), [m.pk for t in threads for m in t.messages.all()]
            )
        return super().get_serializer(*args, **kwargs)


def register(router: DefaultRouter) -> None:
    router.register("emails", EmailViewSet, basename="email")
    router.register("threads", ThreadViewSet, basename="thread")
