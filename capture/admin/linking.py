"""Admin pages for linking: the ordered link rules (with backfill preview and run), a
thread's links with their "why" (manual link by adding, sticky unlink by deleting), the
sticky unlinks, and the review queue's actions. Every change goes through capture.links."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture import links as service
from capture.admin.refs import email_ref, thread_ref
from capture.models import LinkRule, ReviewItem, ThreadLink, ThreadUnlink, UnmatchedReference
from capture.visibility import Viewer, visible_emails, visible_threads
from core.admin import ScaleAdminMixin
from governance.audit import client_address

CHANNEL = "admin"


def audit_kwargs(request) -> dict:
    return {"actor": request.user, "channel": CHANNEL, "address": client_address(request)}


@admin.register(LinkRule)
class LinkRuleAdmin(admin.ModelAdmin):
    list_display = (
        "position", "description", "kind", "strategy", "recent_count", "pattern", "direction",
        "enabled", "skip_auto_generated", "updated",
    )  # fmt: skip
    list_display_links = ("description",)
    list_filter = ("enabled", "kind", "strategy", "direction")
    search_fields = ("description", "pattern")
    ordering = ("position", "id")
    actions = ("enable", "disable", "preview_backfill", "run_backfill")

    def save_model(self, request, obj: LinkRule, form, change) -> None:
        try:
            service.save_link_rule(
                obj, changed=list(form.changed_data) if change else [], **audit_kwargs(request)
            )
        except ValidationError as e:
            self.message_user(request, gettext("Not saved: %(e)s") % {"e": e}, messages.ERROR)

    def delete_model(self, request, obj: LinkRule) -> None:
        service.delete_link_rule(obj, **audit_kwargs(request))

    def delete_queryset(self, request, queryset) -> None:
        for rule in queryset:
            service.delete_link_rule(rule, **audit_kwargs(request))

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        n = 0
        for rule in queryset.filter(enabled=not enabled):
            rule.enabled = enabled
            service.save_link_rule(rule, changed=["enabled"], **audit_kwargs(request))
            n += 1
        self.message_user(request, f"{n} rule(s) {'enabled' if enabled else 'disabled'}.")

    @admin.action(description=_("Enable"))
    def enable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description=_("Disable"))
    def disable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, False)

    @admin.action(description=_("Preview backfill (which threads would be linked, and why)"))
    def preview_backfill(self, request, queryset) -> None:
        for rule in queryset:
            preview = service.preview_backfill(rule=rule)
            rows = preview.rows()
            shown = "; ".join(
                f"thread {r['thread']} → item {r['item']}: {r['why']}" for r in rows[:20]
            )
            more = f" (and {len(rows) - 20} more)" if len(rows) > 20 else ""
            self.message_user(
                request,
                f"Rule #{rule.pk}: {len(rows)} link(s) over {preview.threads} thread(s). "
                f"{shown}{more}",
            )

    @admin.action(description=_("Run backfill (audited)"))
    def run_backfill(self, request, queryset) -> None:
        total = sum(
            service.run_backfill(rule=rule, user=request.user, **audit_kwargs(request))
            for rule in queryset
        )
        self.message_user(request, gettext("%(total)s link(s) made.") % {"total": total})


class ManualLinkForm(forms.ModelForm):
    """The thread and one record; only the thread's owner or an admin may link it."""

    request = None

    class Meta:
        model = ThreadLink
        fields = ("thread", "contact", "organization", "item")

    def clean(self):
        data = super().clean()
        thread = data.get("thread")
        user = getattr(self.request, "user", None)
        if thread is not None and user is not None and not service.can_manage_links(user, thread):
            raise forms.ValidationError("Only the thread's owner or an admin may link it.")
        return data


@admin.register(ThreadLink)
class ThreadLinkAdmin(ScaleAdminMixin, admin.ModelAdmin):
    """Add = link by hand; delete = unlink for good (no rule links it again)."""

    list_display = (
        "id", "thread_display", "source", "contact", "organization", "item", "why", "created",
    )  # fmt: skip
    list_select_related = ("contact", "organization", "item", "rule", "created_by")
    list_filter = ("source", "strategy")
    search_fields = ("=thread__id", "reference", "matched_address")
    autocomplete_fields = ("thread", "contact", "organization", "item")
    fields = ("thread", "contact", "organization", "item")
    actions = ("unlink",)
    show_full_result_count = False

    @admin.display(description=_("why"))
    def why(self, obj: ThreadLink) -> str:
        return service.describe_link(obj)

    @admin.display(description=_("thread"))
    def thread_display(self, obj) -> str:
        return thread_ref(obj.thread_id)

    def get_queryset(self, request):
        """Links of threads the user may see (capture/visibility.py)."""
        return (
            super()
            .get_queryset(request)
            .filter(thread__in=visible_threads(Viewer.of(request)).values("pk"))
        )

    def get_fields(self, request, obj=None):
        # An existing link shows its thread as "#id" (str(thread) is its subject).
        return ("thread_display", *self.fields[1:]) if obj is not None else self.fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ManualLinkForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request
        return form

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else ()

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj: ThreadLink, form, change) -> None:
        data = {k: getattr(obj, f"{k}_id") for k in ("contact", "organization", "item")}
        try:
            target = service.Target.of(data)
            link = service.link_thread(
                obj.thread, target, user=request.user, **audit_kwargs(request)
            )
        except (ValidationError, PermissionDenied) as e:
            self.message_user(request, gettext("Not linked: %(e)s") % {"e": e}, messages.ERROR)
            return
        obj.pk = link.pk

    def delete_model(self, request, obj: ThreadLink) -> None:
        self._unlink(request, [obj])

    def _unlink(self, request, links) -> int:
        n = 0
        for link in links:
            kind, pk = (
                ("contact", link.contact_id)
                if link.contact_id
                else (
                    ("organization", link.organization_id)
                    if link.organization_id
                    else ("item", link.item_id)
                )
            )
            try:
                service.unlink_thread(
                    link.thread,
                    service.Target(kind, pk),
                    user=request.user,
                    **audit_kwargs(request),
                )
                n += 1
            except PermissionDenied as e:
                self.message_user(
                    request,
                    gettext("Thread %(thread_id)s: %(e)s") % {"thread_id": link.thread_id, "e": e},
                    messages.ERROR,
                )
        return n

    @admin.action(description=_("Unlink (sticky: no rule links it again; audited)"))
    def unlink(self, request, queryset) -> None:
        n = self._unlink(request, list(queryset.select_related("thread")))
        self.message_user(request, gettext("%(n)s link(s) removed.") % {"n": n})


@admin.register(ThreadUnlink)
class ThreadUnlinkAdmin(ScaleAdminMixin, admin.ModelAdmin):
    list_display = (
        "id", "thread_display", "contact", "organization", "item", "removed_by", "created",
    )  # fmt: skip
    list_select_related = ("contact", "organization", "item", "removed_by")
    list_filter = ("created",)
    search_fields = ("=thread__id",)
    autocomplete_fields = ("thread", "contact", "organization", "item")

    exclude = ("thread",)
    readonly_fields = ("thread_display",)

    @admin.display(description=_("thread"))
    def thread_display(self, obj) -> str:
        return thread_ref(obj.thread_id)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(thread__in=visible_threads(Viewer.of(request)).values("pk"))
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a manual link of the same record lifts it (audited)


@admin.register(UnmatchedReference)
class UnmatchedReferenceAdmin(admin.ModelAdmin):
    """References a rule found in mail that no open item carried (read-only)."""

    list_display = ("id", "reference", "rule", "email_display", "created")
    list_select_related = ("rule",)
    list_filter = ("rule",)
    search_fields = ("=reference",)
    autocomplete_fields = ("rule",)
    show_full_result_count = False
    exclude = ("email",)
    readonly_fields = ("email_display",)

    @admin.display(description=_("email"))
    def email_display(self, obj) -> str:
        return email_ref(obj.email_id)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(email__in=visible_emails(Viewer.of(request)).values("pk"))
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- the review queue's actions (the page itself is in capture/admin/messages.py) ---------


@admin.display(description=_("ranked candidates"))
def ranked(obj: ReviewItem) -> str:
    rows = (obj.detail or {}).get("ranked") or []
    return format_html_join(
        "\n",
        "<div>{} {} — score {}: {}</div>",
        (
            (
                "item" if "item" in r else "contact",
                r.get("item", r.get("contact")),
                r.get("score"),
                "; ".join(w.get("text", "") for w in r.get("why", [])),
            )
            for r in rows
        ),
    )


@admin.action(description=_("Resolve with the top-ranked candidate (links the thread; audited)"))
def resolve_top(modeladmin, request, queryset) -> None:
    n = service.resolve_review_items(
        list(queryset), None, user=request.user, **audit_kwargs(request)
    )
    modeladmin.message_user(request, gettext("%(n)s review item(s) resolved.") % {"n": n})


@admin.action(description=_("Dismiss (nothing is linked; audited)"))
def dismiss(modeladmin, request, queryset) -> None:
    n = service.dismiss_review_items(list(queryset), user=request.user, **audit_kwargs(request))
    modeladmin.message_user(request, gettext("%(n)s review item(s) dismissed.") % {"n": n})
