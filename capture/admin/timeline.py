"""A CRM record's timeline on its admin change page (contact, organization, item).

crm never imports capture: this module registers the panel with crm.admin's record-panel
registry; the page shows the same capture.timeline.timeline_page the API serves, as the
signed-in user may see it. `?timeline_cursor=` on the change page's URL moves to later pages.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from capture.timeline import TimelineRejected, timeline_page
from crm.admin import register_record_panel


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
