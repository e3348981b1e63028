"""The meetings admin: one page per calendar UID with its state, its occurrences in the next 90
days, its changed occurrences and the messages that carried it. Read-only: meetings change
through captured mail (capture/meetings.py)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from capture.admin.messages import BigTableAdmin, ReadOnlyInline
from capture.meetings import meeting_occurrences
from capture.models import Meeting, MeetingMessage, MeetingOverride

UPCOMING_DAYS = 90


class MeetingOverrideInline(ReadOnlyInline):
    model = MeetingOverride
    fields = ("recurrence_id", "status", "start", "end", "summary", "location", "sequence")
    readonly_fields = fields
    ordering = ("recurrence_id",)


class MeetingMessageInline(ReadOnlyInline):
    model = MeetingMessage
    fk_name = "meeting"
    fields = ("email_link", "email_date", "method", "sequence", "recurrence_id", "applied")
    readonly_fields = fields
    ordering = ("email__date",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("email")

    @admin.display(description=_("message"))
    def email_link(self, obj: MeetingMessage) -> str:
        url = reverse("admin:capture_emailmessage_change", args=[obj.email_id])
        return format_html('<a href="{}">#{}</a>', url, obj.email_id)

    @admin.display(description=_("date"))
    def email_date(self, obj: MeetingMessage):
        return obj.email.date


@admin.register(Meeting)
class MeetingAdmin(BigTableAdmin):
    list_display = (
        "__str__",
        "start",
        "status",
        "recurring",
        "sequence",
        "organizer",
        "message_count",
        "updated",
    )
    list_filter = ("status", "method", "start")
    # No foreign keys to join: the count of messages is annotated instead.
    list_select_related = False
    search_fields = ("=uid", "summary", "=organizer")
    date_hierarchy = "start"
    autocomplete_fields = ()
    inlines = (MeetingOverrideInline, MeetingMessageInline)
    readonly_fields = (
        "uid",
        "status",
        "method",
        "summary",
        "organizer",
        "attendees",
        "start",
        "end",
        "timezone",
        "rrule",
        "rdate",
        "exdate",
        "location",
        "sequence",
        "dtstamp",
        "upcoming",
        "created",
        "updated",
    )
    exclude = ("timing", "emails")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_messages=Count("messages"))

    @admin.display(description=_("messages"), ordering="n_messages")
    def message_count(self, obj: Meeting) -> int:
        return obj.n_messages

    @admin.display(description=_("recurring"), boolean=True)
    def recurring(self, obj: Meeting) -> bool:
        return bool(obj.rrule or obj.rdate)

    @admin.display(description=f"occurrences in the next {UPCOMING_DAYS} days")
    def upcoming(self, obj: Meeting) -> str:
        now = timezone.now()
        found = meeting_occurrences(obj, now, now + timedelta(days=UPCOMING_DAYS))
        if not found:
            return "none"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} to {}{}</li>",
                (
                    (
                        o.start.strftime("%Y-%m-%d %H:%M %Z"),
                        o.end.strftime("%H:%M") if o.end else "",
                        " (moved)" if o.moved else "",
                    )
                    for o in found
                ),
            ),
        )
