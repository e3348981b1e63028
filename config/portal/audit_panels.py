"""Panels of the audit page of one object (governance.admin.register_object_history_panel):
the layers above governance add what it cannot import. For a message: every capture of it —
channel, mailbox or capture address, user, time — "who logged what, where"."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from governance.admin import register_object_history_panel


def _admin_link(object_type: str, object_id: str) -> str | None:
    app_label, _, model_name = object_type.partition(".")
    try:
        return reverse(f"admin:{app_label}_{model_name}_change", args=[object_id])
    except NoReverseMatch:
        return None


def captures_panel(request: HttpRequest, object_type: str, object_id: str) -> str:
    from capture.models import Capture

    if not request.user.has_perm("capture.view_emailmessage") or not object_id.isdigit():
        return ""
    captures = (
        Capture.objects.filter(email_id=int(object_id))
        .select_related("user", "raw__mailbox", "raw__capture_address")
        .order_by("captured_at", "id")
    )
    rows = [
        {
            "when": c.captured_at,
            "channel": c.get_channel_display(),
            "user": c.user.get_username() if c.user else "—",
            "mailbox": str(c.raw.mailbox) if c.raw.mailbox_id else "",
            "capture_address": str(c.raw.capture_address) if c.raw.capture_address_id else "",
            "source": c.source or c.raw.source,
            "raw_id": c.raw_id,
        }
        for c in captures
    ]
    return render_to_string(
        "admin/portal/captures_panel.html",
        {"rows": rows, "object_url": _admin_link(object_type, object_id)},
        request=request,
    )


def object_link_panel(request: HttpRequest, object_type: str, object_id: str) -> str:
    url = _admin_link(object_type, object_id)
    if not url:
        return ""
    return render_to_string("admin/portal/object_link_panel.html", {"url": url}, request=request)


def register() -> None:
    register_object_history_panel("capture.emailmessage", captures_panel)
    for object_type in (
        "capture.rawmessage",
        "capture.thread",
        "capture.mailboxconnection",
        "capture.captureaddress",
        "capture.linkrule",
        "crm.contact",
        "crm.organization",
        "crm.item",
        "crm.user",
        "governance.orgsettings",
        "governance.usersettings",
        "governance.neverlogrule",
    ):
        register_object_history_panel(object_type, object_link_panel)
