"""IMAP mailbox connections in the admin: set up, watch sync status, sync now, pause, resume,
reconcile (is every UID on the server accounted for? docs/imap.md).

The password/token field is write-only: encrypted on save (capture.imap.credentials), never
rendered back. Folder checkpoints are shown read-only, with the last messages skipped.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture.imap import mailboxes as service
from capture.imap.probe import check_connection
from capture.imap.reconcile import ReconcileReport, reconcile_mailbox
from capture.models import MailboxConnection, MailboxFolder
from governance.audit import client_address


class FolderListField(forms.CharField):
    """A list of folder names, one per line (names may contain commas and spaces)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class MailboxConnectionForm(forms.ModelForm):
    password = forms.CharField(
        label="Password or access token",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Encrypted at rest and never shown. Leave empty to keep the current one.",
    )
    folders = FolderListField(
        required=False, help_text="One per line. Empty: INBOX and the \\Sent folder."
    )
    excluded_folders = FolderListField(
        required=False,
        help_text="One per line. Drafts, junk and trash (and the org-wide list) are always excluded.",
    )

    class Meta:
        model = MailboxConnection
        fields = [
            "owner", "name", "enabled", "visibility", "host", "port", "security", "username",
            "auth", "folders", "excluded_folders", "sync_window_days", "interval_minutes",
        ]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not cleaned.get("password"):
            self.add_error("password", "A password or access token is required.")
        return cleaned


class MailboxFolderInline(admin.TabularInline):
    model = MailboxFolder
    extra = 0
    can_delete = False
    fields = [
        "name", "uidvalidity", "last_uid", "messages_synced", "skipped", "recent_skips",
        "last_synced_at",
    ]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("Last skipped (uid: reason, size)"))
    def recent_skips(self, obj: MailboxFolder) -> str:
        entries = list(reversed(obj.skipped_log or []))[:5]
        if not entries:
            return "—"
        return format_html_join(
            "", "<div>{}: {} ({} bytes, {})</div>",
            ((e.get("uid"), e.get("reason"), e.get("size"), (e.get("at") or "")[:16]) for e in entries),
        )  # fmt: skip


class SyncStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("ok", "Syncing"),
            ("error", "Last run failed"),
            ("paused", "Paused"),
            ("off", "Disabled"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "paused":
            return queryset.exclude(paused_reason="")
        if value == "off":
            return queryset.filter(enabled=False)
        if value == "error":
            return queryset.filter(enabled=True, paused_reason="").exclude(last_error="")
        if value == "ok":
            return queryset.filter(enabled=True, paused_reason="", last_error="")
        return queryset


@admin.register(MailboxConnection)
class MailboxConnectionAdmin(admin.ModelAdmin):
    form = MailboxConnectionForm
    list_display = [
        "__str__", "owner", "host", "enabled", "state", "last_sync_at", "last_error_at",
        "next_sync_at", "reconciliation_gap",
    ]  # fmt: skip
    list_select_related = ("owner",)
    list_filter = [SyncStateFilter, "enabled", "security", "auth", "visibility"]
    search_fields = ["name", "host", "username", "owner__username", "owner__email"]
    autocomplete_fields = ["owner"]
    inlines = [MailboxFolderInline]
    readonly_fields = [
        "state", "last_sync_at", "next_sync_at", "last_error", "last_error_at",
        "consecutive_auth_failures", "consecutive_errors", "paused_reason", "lease_until",
        "reconciliation_gap", "last_reconciled_at",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["owner", "name", "enabled", "visibility"]}),
        (_("Server"), {"fields": ["host", "port", "security", "username", "auth", "password"]}),
        (
            "What to sync",
            {"fields": ["folders", "excluded_folders", "sync_window_days", "interval_minutes"]},
        ),
        (_("Status"), {"fields": readonly_fields}),
    ]
    actions = ["test_connection", "sync_now", "resume", "pause", "reconcile", "reconcile_and_fetch"]

    @admin.display(description=_("State"))
    def state(self, obj: MailboxConnection) -> str:
        if not obj.enabled:
            return "disabled"
        if obj.paused_reason:
            return format_html('<span title="{}">paused</span>', obj.paused_reason)
        if obj.last_error:
            return format_html('<span title="{}">error</span>', obj.last_error)
        return "ok" if obj.last_sync_at else "not synced yet"

    @admin.display(description=_("Reconciliation gap"), ordering="reconcile_gap")
    def reconciliation_gap(self, obj: MailboxConnection) -> str:
        if obj.reconcile_gap is None:
            return "—"
        if obj.reconcile_gap:
            return format_html(
                '<strong title="UIDs neither stored nor accounted for, {}">{}</strong>',
                f"{obj.last_reconciled_at:%Y-%m-%d %H:%M}", obj.reconcile_gap,
            )  # fmt: skip
        return "0"

    def _audit(self, request) -> dict:
        return {"actor": request.user, "channel": "admin", "address": client_address(request)}

    def save_model(self, request, obj, form, change) -> None:
        secret = form.cleaned_data.get("password") or None
        changed = [f for f in form.changed_data if f != "password"] if change else None
        service.save_mailbox(obj, secret=secret, changed=changed, **self._audit(request))

    def delete_model(self, request, obj) -> None:
        service.delete_mailbox(obj, **self._audit(request))

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    @admin.action(
        description=_("Test connection (log in and list folders; no sync)"), permissions=["change"]
    )
    def test_connection(self, request, queryset) -> None:
        passed = 0
        mailboxes = list(queryset)
        for mailbox in mailboxes:
            check = check_connection(mailbox, **self._audit(request))
            passed += check.ok
            level = messages.SUCCESS if check.ok else messages.ERROR
            self.message_user(request, f"{mailbox}: {check.summary()}", level)
        self.message_user(
            request,
            gettext("%(passed)s of %(count)s connection(s) OK.")
            % {"passed": passed, "count": len(mailboxes)},
        )

    @admin.action(description=_("Sync now"), permissions=["change"])
    def sync_now(self, request, queryset) -> None:
        queued = sum(service.request_sync(m, actor=request.user) for m in queryset)
        skipped = queryset.count() - queued
        self.message_user(
            request,
            gettext("Queued %(queued)s mailbox sync(s).") % {"queued": queued},
            messages.SUCCESS,
        )
        if skipped:
            self.message_user(
                request,
                gettext("%(skipped)s paused or disabled mailbox(es) not queued.")
                % {"skipped": skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Resume (clear pause and auth failures)"), permissions=["change"])
    def resume(self, request, queryset) -> None:
        resumed = sum(service.resume_mailbox(m, actor=request.user) for m in queryset)
        self.message_user(
            request,
            gettext("Resumed %(resumed)s mailbox(es).") % {"resumed": resumed},
            messages.SUCCESS,
        )

    @admin.action(description=_("Pause"), permissions=["change"])
    def pause(self, request, queryset) -> None:
        targets = list(queryset.filter(Q(paused_reason="")))
        for mailbox in targets:
            service.pause_mailbox(mailbox, reason="Paused by an admin.", actor=request.user)
        self.message_user(
            request,
            gettext("Paused %(count)s mailbox(es).") % {"count": len(targets)},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Reconcile (count UIDs neither stored nor accounted for)"),
        permissions=["change"],
    )
    def reconcile(self, request, queryset) -> None:
        self._reconcile(request, queryset, fetch_missing=False)

    @admin.action(description=_("Reconcile and fetch missing"), permissions=["change"])
    def reconcile_and_fetch(self, request, queryset) -> None:
        self._reconcile(request, queryset, fetch_missing=True)

    def _reconcile(self, request, queryset, *, fetch_missing: bool) -> None:
        for mailbox in queryset:
            report = reconcile_mailbox(
                mailbox.pk, fetch_missing=fetch_missing, **self._audit(request)
            )
            self.message_user(request, _reconcile_message(mailbox, report), _level(report))


def _reconcile_message(mailbox: MailboxConnection, report: ReconcileReport) -> str:
    if not report.completed:
        return f"{mailbox}: not reconciled ({report.status}{': ' if report.error else ''}{report.error})."
    text = f"{mailbox}: {report.summary().split('; ', 1)[1]}"
    missing = [f"{f.name}: {', '.join(map(str, f.gap_uids[:10]))}" for f in report.folders if f.gap]
    if missing:
        text += f". Missing UIDs: {'; '.join(missing)}"
    resync = [f.name for f in report.folders if f.resync]
    if resync:
        text += f". UIDVALIDITY changed (re-synced by the next sync): {', '.join(resync)}"
    return text


def _level(report: ReconcileReport) -> int:
    if not report.completed:
        return messages.ERROR
    return messages.WARNING if report.gap or report.status == "partial" else messages.SUCCESS
