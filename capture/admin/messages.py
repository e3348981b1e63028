"""Admin pages for captured mail: raw messages (the operations view), messages, threads,
the review queue. Captured data is read-only here: changes go through services that audit."""

from __future__ import annotations

from functools import cached_property

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from capture import storage
from capture.admin.categories import EmailCategoriesAdminMixin
from capture.admin.linking import dismiss, ranked, resolve_top
from capture.links import describe_link
from capture.models import (
    Attachment,
    Capture,
    EmailMessage,
    MeetingMessage,
    Participant,
    RawMessage,
    ReviewItem,
    Thread,
    ThreadLink,
)
from capture.operations import discard_raw_messages, retry_raw_messages
from governance.audit import record_event

CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most CAP rows: big tables must not be counted in full on every page view."""

    @cached_property
    def count(self) -> int:
        return len(self.object_list.values("pk")[: CAP + 1])


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BigTableAdmin(admin.ModelAdmin):
    show_full_result_count = False
    paginator = CappedPaginator
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RawMessage)
class RawMessageAdmin(BigTableAdmin):
    list_display = (
        "id",
        "received_at",
        "channel",
        "status",
        "reason_code",
        "user",
        "size",
        "attempts",
        "email_link",
    )
    list_filter = ("status", "channel", "reason_code")
    list_select_related = ("user", "email")
    search_fields = ("=id", "=sha256", "source", "reason_code")
    date_hierarchy = "received_at"
    readonly_fields = (
        "sha256",
        "size",
        "storage_path",
        "channel",
        "source",
        "envelope_from",
        "envelope_to",
        "user",
        "capture_address",
        "mailbox",
        "idempotency_key",
        "options",
        "status",
        "reason_code",
        "reason_detail",
        "attempts",
        "traceback",
        "received_at",
        "processed_at",
        "email",
        "source_link",
    )
    actions = ("retry", "release_quarantine", "discard")

    @admin.display(description="message")
    def email_link(self, obj: RawMessage) -> str:
        if not obj.email_id:
            return "-"
        url = reverse("admin:capture_emailmessage_change", args=[obj.email_id])
        return format_html('<a href="{}">#{}</a>', url, obj.email_id)

    @admin.display(description="raw source")
    def source_link(self, obj: RawMessage) -> str:
        url = reverse("admin:capture_rawmessage_source", args=[obj.pk])
        return format_html('<a href="{}">view raw source (audited)</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:pk>/source/",
                self.admin_site.admin_view(self.source_view),
                name="capture_rawmessage_source",
            ),
            *super().get_urls(),
        ]

    def source_view(self, request, pk: int) -> HttpResponse:
        """The exact bytes received, as plain text (never rendered as HTML), audited."""
        if not request.user.has_perm("capture.view_rawmessage"):
            return HttpResponse(status=403)
        raw = get_object_or_404(RawMessage, pk=pk)
        try:
            data = storage.read_raw(raw.storage_path)
        except FileNotFoundError:
            return HttpResponse(
                "The raw bytes are no longer stored.", status=410, content_type="text/plain"
            )
        record_event(
            "raw.source_viewed",
            actor=request.user,
            obj=raw,
            channel="admin",
            address=request.META.get("REMOTE_ADDR", ""),
        )
        response = HttpResponse(data, content_type="text/plain; charset=utf-8")
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    @admin.action(description="Retry processing", permissions=["retry"])
    def retry(self, request, queryset) -> None:
        n = retry_raw_messages(list(queryset.values_list("pk", flat=True)), actor=request.user)
        self.message_user(
            request, f"{n} raw messages queued again (only rejected or failed ones are retried)."
        )

    @admin.action(description="Release from quarantine and retry", permissions=["retry"])
    def release_quarantine(self, request, queryset) -> None:
        n = retry_raw_messages(
            list(queryset.values_list("pk", flat=True)), actor=request.user, release_quarantine=True
        )
        self.message_user(request, f"{n} raw messages released and queued.")

    @admin.action(description="Discard (delete the raw bytes; audited)", permissions=["retry"])
    def discard(self, request, queryset) -> None:
        n = discard_raw_messages(list(queryset.values_list("pk", flat=True)), actor=request.user)
        self.message_user(request, f"{n} raw messages discarded.", messages.WARNING)

    def has_retry_permission(self, request) -> bool:
        user = request.user
        return bool(user.is_superuser or getattr(user, "is_admin_role", False))


class ParticipantInline(ReadOnlyInline):
    model = Participant
    fields = ("role", "address", "name", "match", "contact", "organization", "user", "candidates")
    readonly_fields = fields


class AttachmentInline(ReadOnlyInline):
    model = Attachment
    fields = ("filename", "content_type", "size", "inline", "dropped", "sha256")
    readonly_fields = fields


class CaptureInline(ReadOnlyInline):
    model = Capture
    fields = ("captured_at", "user", "channel", "source", "raw")
    readonly_fields = fields


class MeetingMessageInline(ReadOnlyInline):
    """The meetings this message carried (an invite, an update, a cancel)."""

    model = MeetingMessage
    fk_name = "email"
    fields = ("meeting", "method", "sequence", "recurrence_id", "applied")
    readonly_fields = fields


@admin.register(EmailMessage)
class EmailMessageAdmin(EmailCategoriesAdminMixin, BigTableAdmin):
    list_display = (
        "date",
        "subject_display",
        "from_address",
        "direction",
        "kind",
        "stored",
        "body_truncated",
        "has_attachments",
        "thread_link",
    )
    list_filter = ("direction", "kind", "stored", "body_truncated", "auto_generated", "date")
    list_select_related = ("thread",)
    search_fields = ("=message_id", "subject", "=from_address")
    date_hierarchy = "date"
    inlines = (ParticipantInline, AttachmentInline, CaptureInline, MeetingMessageInline)
    exclude = ("html_body", "headers")
    readonly_fields = (
        "message_id",
        "message_id_synthesised",
        "thread",
        "kind",
        "subject",
        "date",
        "date_flag",
        "direction",
        "from_address",
        "from_name",
        "in_reply_to",
        "references",
        "text_body",
        "body_truncated",
        "stored",
        "gate_reasons",
        "auto_generated",
        "forwarded_flag",
        "size",
        "has_attachments",
        "defects",
        "first_raw",
        "expires_at",
    )

    @admin.display(description="subject")
    def subject_display(self, obj: EmailMessage) -> str:
        flag = " [truncated]" if obj.body_truncated else ""
        return (obj.subject or "(no subject)")[:120] + flag

    @admin.display(description="thread")
    def thread_link(self, obj: EmailMessage) -> str:
        url = reverse("admin:capture_thread_change", args=[obj.thread_id])
        return format_html('<a href="{}">#{}</a>', url, obj.thread_id)


class ThreadLinkInline(ReadOnlyInline):
    model = ThreadLink
    fields = ("source", "contact", "organization", "item", "why", "created")
    readonly_fields = fields

    @admin.display(description="why")
    def why(self, obj: ThreadLink) -> str:
        return describe_link(obj)


class ThreadMessageInline(ReadOnlyInline):
    model = EmailMessage
    fields = ("date", "subject", "from_address", "direction", "kind")
    readonly_fields = fields
    show_change_link = True
    ordering = ("date",)


@admin.register(Thread)
class ThreadAdmin(BigTableAdmin):
    list_display = ("id", "subject", "owner", "message_count", "first_at", "last_at", "private")
    list_filter = ("private", "last_at")
    list_select_related = ("owner",)
    search_fields = ("=id", "subject")
    inlines = (ThreadMessageInline, ThreadLinkInline)
    readonly_fields = (
        "subject",
        "subject_norm",
        "owner",
        "first_at",
        "last_at",
        "message_count",
        "private",
    )


@admin.register(ReviewItem)
class ReviewItemAdmin(BigTableAdmin):
    list_display = ("id", "kind", "status", "email", "thread", "created", "resolved_by")
    list_filter = ("kind", "status")
    list_select_related = ("email", "thread", "resolved_by")
    search_fields = ("=id", "=thread__id")
    actions = (resolve_top, dismiss)
    readonly_fields = (
        "kind",
        "status",
        "email",
        "thread",
        "participant",
        ranked,
        "candidates",
        "detail",
        "resolved_by",
        "resolved_at",
    )
