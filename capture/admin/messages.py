"""Admin pages for captured mail: raw messages (the operations view), messages, threads,
the review queue. Captured data is read-only here: changes go through services that audit."""

from __future__ import annotations

import csv

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture import storage
from capture.admin.categories import EmailCategoriesAdminMixin
from capture.admin.linking import dismiss, ranked, resolve_top
from capture.admin.refs import email_ref, thread_ref
from capture.admin.viewer import viewer_urls
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
from capture.visibility import (
    NO_ACCESS,
    Access,
    Viewer,
    access_for,
    access_map,
    sees_everything,
    subject_readable_emails,
    thread_access,
    visible_emails,
    visible_threads,
)
from core.admin import ScaleAdminMixin
from governance.audit import client_address, record_event

CAP = 10_000


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BigTableAdmin(ScaleAdminMixin, admin.ModelAdmin):
    """No full count, no giant selects: core.admin, docs/admin.md "At scale"."""

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
    list_filter = ("status", "channel", "reason_code", "received_at")
    list_select_related = ("user", "email")
    search_fields = ("=id", "=sha256", "source", "reason_code")
    # No date_hierarchy: its year/month links are a DISTINCT over the whole table (docs/admin.md
    # "At scale"); the received_at filter gives the same narrowing from an index.
    ordering = ("-received_at", "-id")
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
        "email_link",
        "source_link",
    )
    exclude = ("email",)  # shown as "#id" (email_link): str(message) is its subject
    actions = ("retry", "release_quarantine", "discard")

    @admin.display(description=_("message"))
    def email_link(self, obj: RawMessage) -> str:
        if not obj.email_id:
            return "-"
        url = reverse("admin:capture_emailmessage_change", args=[obj.email_id])
        return format_html('<a href="{}">#{}</a>', url, obj.email_id)

    @admin.display(description=_("raw source"))
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
        # The raw bytes hold the whole message: only for a viewer who may read its body (or,
        # for a message never stored, an admin or compliance officer).
        if raw.email_id is not None:
            access = access_for(Viewer.of(request), raw.email_id)
            if not access.body:
                return HttpResponse(access.hidden(), status=403, content_type="text/plain")
        elif not sees_everything(request.user):
            return HttpResponse(status=403)
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

    @admin.action(description=_("Retry processing"), permissions=["retry"])
    def retry(self, request, queryset) -> None:
        n = retry_raw_messages(list(queryset.values_list("pk", flat=True)), actor=request.user)
        self.message_user(
            request,
            gettext("%(n)s raw messages queued again (only rejected or failed ones are retried).")
            % {"n": n},
        )

    @admin.action(description=_("Release from quarantine and retry"), permissions=["retry"])
    def release_quarantine(self, request, queryset) -> None:
        n = retry_raw_messages(
            list(queryset.values_list("pk", flat=True)), actor=request.user, release_quarantine=True
        )
        self.message_user(request, gettext("%(n)s raw messages released and queued.") % {"n": n})

    @admin.action(description=_("Discard (delete the raw bytes; audited)"), permissions=["retry"])
    def discard(self, request, queryset) -> None:
        n = discard_raw_messages(list(queryset.values_list("pk", flat=True)), actor=request.user)
        self.message_user(
            request, gettext("%(n)s raw messages discarded.") % {"n": n}, messages.WARNING
        )

    def has_retry_permission(self, request) -> bool:
        user = request.user
        return bool(user.is_superuser or getattr(user, "is_admin_role", False))


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AccessChangeList(ChangeList):
    """Decides, once for the page, what the signed-in user sees of each row (obj._access)."""

    def get_results(self, request) -> None:
        super().get_results(request)
        rows = list(self.result_list)
        accesses = access_map(Viewer.of(request), [r.pk for r in rows])
        for row in rows:
            row._access = accesses.get(row.pk, NO_ACCESS)
            if not row._access.subject:  # str(row) labels the row's checkbox
                row.subject = row._access.hidden()


def _is_autocomplete(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.url_name == "autocomplete")


def _access(obj) -> Access:
    return getattr(obj, "_access", NO_ACCESS)


class ParticipantInline(ReadOnlyInline):
    model = Participant
    fields = ("role", "address", "name", "match", "contact", "organization", "user", "candidates")
    readonly_fields = fields


class AttachmentInline(ReadOnlyInline):
    """Attachments, for a viewer who may see them (the page's access, set by get_object)."""

    model = Attachment
    fields = ("filename", "content_type", "size", "inline", "dropped", "sha256")
    readonly_fields = fields

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        access = getattr(request, "_mw_email_access", NO_ACCESS)
        return qs if access.attachments else qs.none()


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

    def get_queryset(self, request):
        # str(meeting) is its summary: as much as a subject.
        qs = super().get_queryset(request)
        access = getattr(request, "_mw_email_access", NO_ACCESS)
        return qs if access.subject else qs.none()


@admin.register(EmailMessage)
class EmailMessageAdmin(EmailCategoriesAdminMixin, BigTableAdmin):
    """Messages as the signed-in user may see them (capture.visibility): the list holds only
    what they may know exists, a subject they may not read shows "(hidden: reason)", and the
    body is never on this page: it opens in the safe viewer, which audits each view."""

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
        "viewer_link",
    )
    list_filter = ("direction", "kind", "stored", "body_truncated", "auto_generated", "date")
    list_select_related = ("thread",)
    search_fields = ("=message_id", "subject", "=from_address")
    # No date_hierarchy (a DISTINCT over the whole table): the "date" filter narrows instead.
    ordering = ("-date", "-id")
    search_help_text = (
        "Exact message id or sender address (and subject words, for compliance officers). "
        "Message bodies are not searched: with MAILWARDEN_ENCRYPT_BODIES on they are "
        "encrypted in the database (docs/operations.md)."
    )
    inlines = (ParticipantInline, AttachmentInline, CaptureInline, MeetingMessageInline)
    # The thread shows as "#id" (its str() is its subject, which may be hidden).
    exclude = ("html_body", "headers", "text_body", "subject", "thread")
    readonly_fields = (
        "viewer_link",
        "access_display",
        "message_id",
        "message_id_synthesised",
        "thread_link",
        "kind",
        "subject_display",
        "date",
        "date_flag",
        "direction",
        "from_address",
        "from_name",
        "in_reply_to",
        "references",
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
    actions = ("export_csv",)

    def get_queryset(self, request):
        if _is_autocomplete(request):  # prints str(message), its subject: only readable ones
            return subject_readable_emails(Viewer.of(request)).order_by("-pk")
        return visible_emails(Viewer.of(request))

    def get_search_fields(self, request):
        # A subject the viewer may not read must not be findable by searching for it: subject
        # search is for those who read every stored subject (compliance officers).
        if request.user.role == "compliance":
            return self.search_fields
        return ("=message_id", "=from_address")

    def get_changelist(self, request, **kwargs):
        return AccessChangeList

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._access = access_for(Viewer.of(request), obj)
            request._mw_email_access = obj._access
            # Masked on the instance itself: the page title and breadcrumbs use str(obj).
            # (Never saved: the page saves categories only, through capture.categories.)
            if not obj._access.subject:
                obj.subject = obj._access.hidden()
            if not obj._access.body:
                obj.text_body = obj.html_body = ""
        return obj

    def get_urls(self):
        return [*viewer_urls(self), *super().get_urls()]

    @admin.display(description=_("subject"))
    def subject_display(self, obj: EmailMessage) -> str:
        access = _access(obj)
        if not access.subject:
            return access.hidden()
        flag = " [truncated]" if obj.body_truncated else ""  # (obj.subject is masked above)
        return (obj.subject or "(no subject)")[:120] + flag

    @admin.display(description=_("what you may see"))
    def access_display(self, obj: EmailMessage) -> str:
        access = _access(obj)
        seen = [n for n in ("subject", "body", "attachments") if getattr(access, n)]
        text = ", ".join(seen) if seen else "metadata only"
        return text + (f" ({access.reason})" if access.reason else "")

    @admin.display(description=_("viewer"))
    def viewer_link(self, obj: EmailMessage) -> str:
        url = reverse("admin:capture_emailmessage_view", args=[obj.pk])
        return format_html('<a href="{}">open in the safe viewer</a>', url)

    @admin.display(description=_("thread"))
    def thread_link(self, obj: EmailMessage) -> str:
        url = reverse("admin:capture_thread_change", args=[obj.thread_id])
        return format_html('<a href="{}">#{}</a>', url, obj.thread_id)

    @admin.action(description=_("Export the selected messages as CSV (no bodies; audited)"))
    def export_csv(self, request, queryset) -> HttpResponse:
        """Metadata and subjects of the selected messages as the user may see them."""
        rows = list(queryset.order_by("date", "id")[:CAP])
        accesses = access_map(Viewer.of(request), [r.pk for r in rows])
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="messages.csv"'
        writer = csv.writer(response)
        writer.writerow(
            ["id", "date", "subject", "from", "direction", "stored", "thread", "hidden"]
        )
        for row in rows:
            access = accesses.get(row.pk, NO_ACCESS)
            subject = row.subject if access.subject else access.hidden()
            writer.writerow([_cell(v) for v in (
                row.pk, row.date.isoformat(), subject, row.from_address, row.direction,
                row.stored, row.thread_id, access.reason,
            )])  # fmt: skip
        record_event(
            "messages.exported",
            actor=request.user,
            channel="admin",
            address=client_address(request),
            object_type="capture.emailmessage",
            detail={"count": len(rows), "format": "csv", "ids": [r.pk for r in rows][:1000]},
        )
        return response


class ThreadLinkInline(ReadOnlyInline):
    model = ThreadLink
    fields = ("source", "contact", "organization", "item", "why", "created")
    readonly_fields = fields

    @admin.display(description=_("why"))
    def why(self, obj: ThreadLink) -> str:
        return describe_link(obj)


def _thread_accesses(request, thread_ids: list[int]) -> dict[int, list[tuple[int, Access]]]:
    """Per thread: (message id, access) of each message the viewer may see."""
    viewer = Viewer.of(request)
    pairs = list(
        visible_emails(viewer).filter(thread_id__in=thread_ids).values_list("pk", "thread_id")
    )
    accesses = access_map(viewer, [pk for pk, _ in pairs])
    out: dict[int, list[tuple[int, Access]]] = {}
    for pk, tid in pairs:
        out.setdefault(tid, []).append((pk, accesses[pk]))
    return out


class ThreadChangeList(ChangeList):
    def get_results(self, request) -> None:
        super().get_results(request)
        rows = list(self.result_list)
        per_thread = _thread_accesses(request, [r.pk for r in rows])
        for row in rows:
            row._access = thread_access(a for _, a in per_thread.get(row.pk, ()))
            if not row._access.subject:  # str(row) labels the row's checkbox
                row.subject = row._access.hidden()


@admin.register(Thread)
class ThreadAdmin(BigTableAdmin):
    """Threads with a message the user may see; the subject as far as they may read it."""

    list_display = (
        "id",
        "subject_display",
        "owner",
        "message_count",
        "first_at",
        "last_at",
        "private",
    )
    list_filter = ("private", "last_at")
    list_select_related = ("owner",)
    ordering = ("-last_at", "-id")
    search_fields = ("=id",)
    inlines = (ThreadLinkInline,)
    readonly_fields = (
        "subject_display",
        "owner",
        "first_at",
        "last_at",
        "message_count",
        "private",
        "messages_display",
    )
    exclude = ("subject", "subject_norm")

    def get_queryset(self, request):
        viewer = Viewer.of(request)
        if _is_autocomplete(request):  # prints str(thread), its subject: only readable ones
            readable = subject_readable_emails(viewer).values("thread_id")
            return visible_threads(viewer).filter(pk__in=readable).order_by("-pk")
        return visible_threads(viewer)

    def get_changelist(self, request, **kwargs):
        return ThreadChangeList

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            rows = _thread_accesses(request, [obj.pk]).get(obj.pk, [])
            obj._access = thread_access(a for _, a in rows)
            obj._messages = rows
            if not obj._access.subject:  # str(obj) is the page title
                obj.subject = obj.subject_norm = obj._access.hidden()
        return obj

    @admin.display(description=_("subject"))
    def subject_display(self, obj: Thread) -> str:
        access = _access(obj)
        return (obj.subject or "(no subject)") if access.subject else access.hidden()

    @admin.display(description=_("messages you may see"))
    def messages_display(self, obj: Thread) -> str:
        rows = getattr(obj, "_messages", [])
        emails = {
            e.pk: e
            for e in EmailMessage.objects.filter(pk__in=[pk for pk, _ in rows]).only(
                "id", "date", "subject", "from_address"
            )
        }
        ordered = sorted(rows, key=lambda r: (emails[r[0]].date, r[0]))
        return format_html_join(
            "",
            '<div class="mw-message">{} &middot; {} &middot; <a href="{}">{}</a></div>',
            (
                (
                    emails[pk].date.strftime("%Y-%m-%d %H:%M"),
                    emails[pk].from_address,
                    reverse("admin:capture_emailmessage_view", args=[pk]),
                    (emails[pk].subject or "(no subject)") if a.subject else a.hidden(),
                )
                for pk, a in ordered
            ),
        )


@admin.register(ReviewItem)
class ReviewItemAdmin(BigTableAdmin):
    list_display = ("id", "kind", "status", "email_ref", "thread_ref", "created", "resolved_by")
    list_filter = ("kind", "status")
    list_select_related = ("resolved_by",)
    search_fields = ("=id", "=thread__id")
    actions = (resolve_top, dismiss)
    readonly_fields = (
        "kind",
        "status",
        "email_ref",
        "thread_ref",
        "participant",
        ranked,
        "candidates",
        "detail",
        "resolved_by",
        "resolved_at",
    )

    exclude = ("email", "thread")

    def get_queryset(self, request):
        """Review items about mail the user may see (a subject reaches them only by the
        message's own page, which masks it)."""
        viewer = Viewer.of(request)
        qs = super().get_queryset(request)
        if sees_everything(request.user):
            return qs
        return qs.filter(
            Q(email__in=visible_emails(viewer).values("pk"))
            | Q(email__isnull=True, thread__in=visible_threads(viewer).values("pk"))
            | Q(email__isnull=True, thread__isnull=True)
        )

    @admin.display(description=_("email"))
    def email_ref(self, obj: ReviewItem) -> str:
        return email_ref(obj.email_id)

    @admin.display(description=_("thread"))
    def thread_ref(self, obj: ReviewItem) -> str:
        return thread_ref(obj.thread_id)
