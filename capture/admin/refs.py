"""References to a thread or a message in admin lists and pages: "#id", linked, never the
subject (str(thread) / str(message) is the subject, which the viewer may not be allowed to
read: capture/visibility.py)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html


def thread_ref(thread_id: int | None) -> str:
    if not thread_id:
        return "-"
    url = reverse("admin:capture_thread_change", args=[thread_id])
    return format_html('<a href="{}">#{}</a>', url, thread_id)


def email_ref(email_id: int | None) -> str:
    if not email_id:
        return "-"
    url = reverse("admin:capture_emailmessage_view", args=[email_id])
    return format_html('<a href="{}">#{}</a>', url, email_id)
