"""A CRM record's timeline on its admin change page (contact, organization, item).

crm never imports capture: this module registers the panel with crm.admin's record-panel
registry; the page shows the same capture.timeline.timeline_page the API serves, as the
signed-in user may see it. `?timeline_cursor=` on the change page's URL moves to later pages.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture.admin.refs import email_ref, thread_ref
from capture.models import TimelinePin
from capture.timeline import TimelineRejected, remove_pins, timeline_page
from capture.visibility import Viewer, visible_threads
from crm.admin import register_record_panel
from governance.audit import client_address


def timeline_panel(request, record) -> str:
    """HTML: the first (or `?timeline_cursor=`) page of the record's timeline."""
    cursor = request.GET.get("timeline_cursor") or None
    error = ""
    try:
        page = timeline_page(record, request.user, cursor)
    except TimelineRejected:
        page, error = timeline_page(record, request.user), "That timeline page no longer exists."
    next_url = None
    if page.next_cursor:
        q = request.GET.copy()
        q["timeline_cursor"] = page.next_cursor
        next_url = f"?{q.urlencode()}"
    return render_to_string(
        "admin/capture/timeline_panel.html",
        {"page": page, "next_url": next_url, "error": error, "paged": bool(cursor)},
        request=request,
    )


register_record_panel(timeline_panel)


@admin.register(TimelinePin)
class TimelinePinAdmin(admin.ModelAdmin):
    """Pins are made on the timeline (API); here they are reviewed and removed."""

    list_display = (
        "id", "record_type", "record_id", "thread_display", "email_display", "created_by",
        "created",
    )  # fmt: skip
    list_select_related = ("created_by",)
    list_filter = ("record_type", "created")
    # Not thread__subject: a subject the user may not read must not be findable.
    search_fields = ("=record_id", "=thread__id")
    autocomplete_fields = ("thread", "email", "created_by")
    exclude = ("thread", "email")
    readonly_fields = (
        "record_type", "record_id", "thread_display", "email_display", "created_by", "created",
    )  # fmt: skip

    @admin.display(description=_("thread"))
    def thread_display(self, obj: TimelinePin) -> str:
        return thread_ref(obj.thread_id)

    @admin.display(description=_("email"))
    def email_display(self, obj: TimelinePin) -> str:
        return email_ref(obj.email_id)

    def get_queryset(self, request):
        """Pins of threads the user may see (capture/visibility.py)."""
        return (
            super()
            .get_queryset(request)
            .filter(thread__in=visible_threads(Viewer.of(request)).values("pk"))
        )

    actions = ("unpin",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the unpin action audits each removal

    @admin.action(description=_("Unpin the selected entries"), permissions=["view"])
    def unpin(self, request, queryset) -> None:
        n = remove_pins(
            list(queryset),
            actor=request.user,
            channel="admin",
            address=client_address(request),
        )
        self.message_user(request, gettext("%(n)s pins removed.") % {"n": n}, messages.SUCCESS)
