"""Tracking in the admin: read-only lists of tracked messages and of their opens and clicks
(newest first, as the viewer may see them), the tracking of a captured message on its page,
and a contact's opens and clicks on the contact's page (crm record panel).

Events are written only by the /t/ endpoints; nothing here changes them.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from capture.admin.messages import BigTableAdmin, EmailMessageAdmin, ReadOnlyInline
from capture.models import TrackedContact, TrackedMessage, TrackingEvent
from capture.tracking.service import summaries, visible_events, visible_tracked
from crm.admin import register_record_panel
from crm.models import Contact

CONTACT_PANEL_ROWS = 20


def _events_url(tracked_id: int) -> str:
    return reverse("admin:capture_trackingevent_changelist") + f"?tracked__id__exact={tracked_id}"


@admin.register(TrackedMessage)
class TrackedMessageAdmin(BigTableAdmin):
    list_display = (
        "issued_at",
        "subject_display",
        "sender",
        "mode",
        "recipient_count",
        "opens",
        "clicks",
        "captured",
    )
    list_filter = ("mode", "issued_at")
    list_select_related = ("sender",)
    search_fields = ("=message_id", "subject")
    ordering = ("-issued_at", "-id")
    fields = (
        "message_id",
        "captured",
        "sender",
        "subject",
        "mode",
        "recipient_count",
        "links",
        "issued_at",
        "expires_at",
        "events",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            visible_tracked(request.user)
            .annotate(
                n_opens=Count("events", filter=Q(events__kind=TrackingEvent.Kind.OPEN)),
                n_clicks=Count("events", filter=Q(events__kind=TrackingEvent.Kind.CLICK)),
            )
            .select_related("sender")
        )

    @admin.display(description=_("subject"))
    def subject_display(self, obj: TrackedMessage) -> str:
        return (obj.subject or obj.message_id)[:120]

    @admin.display(description=_("opens"), ordering="n_opens")
    def opens(self, obj: TrackedMessage) -> int:
        return obj.n_opens  # type: ignore[attr-defined]

    @admin.display(description=_("clicks"), ordering="n_clicks")
    def clicks(self, obj: TrackedMessage) -> int:
        return obj.n_clicks  # type: ignore[attr-defined]

    @admin.display(description=_("captured mail"))
    def captured(self, obj: TrackedMessage) -> str:
        email = obj.message if _captured(obj) else None
        if email is None:
            return "not captured (yet)"
        url = reverse("admin:capture_emailmessage_change", args=[email.pk])
        return format_html('<a href="{}">#{}</a>', url, email.pk)

    @admin.display(description=_("opens and clicks"))
    def events(self, obj: TrackedMessage) -> str:
        return format_html('<a href="{}">list them</a>', _events_url(obj.pk))


def _captured(obj: TrackedMessage) -> bool:
    try:
        return obj.message is not None
    except TrackedMessage.message.RelatedObjectDoesNotExist:
        return False


@admin.register(TrackingEvent)
class TrackingEventAdmin(BigTableAdmin):
    list_display = (
        "occurred_at",
        "kind",
        "message_link",
        "url",
        "machine",
        "machine_reason",
        "user_agent",
    )
    list_filter = ("kind", "machine", "machine_reason")
    list_select_related = ("tracked",)
    search_fields = ("=tracked__message_id",)
    ordering = ("-id",)  # newest first: events are inserted as they happen
    fields = ("occurred_at", "kind", "tracked", "link", "url", "machine", "machine_reason")
    readonly_fields = (*fields, "user_agent")

    def get_queryset(self, request):
        return visible_events(request.user)

    @admin.display(description=_("message"))
    def message_link(self, obj: TrackingEvent) -> str:
        url = reverse("admin:capture_trackedmessage_change", args=[obj.tracked_id])
        return format_html(
            '<a href="{}">{}</a>', url, obj.tracked.subject or obj.tracked.message_id
        )

    @admin.display(description=_("URL"))
    def url(self, obj: TrackingEvent) -> str:
        links = obj.tracked.links or []
        return links[obj.link] if obj.link is not None and obj.link < len(links) else ""


class TrackingInline(ReadOnlyInline):
    """The message's tracking (if it was sent tracked) on the captured message's page."""

    model = TrackedMessage
    fk_name = "message"
    verbose_name = "tracking"
    verbose_name_plural = "tracking (opens and clicks)"
    fields = ("mode", "issued_at", "summary", "events")
    readonly_fields = fields
    can_delete = False

    @admin.display(description=_("opens and clicks"))
    def summary(self, obj: TrackedMessage) -> str:
        s = summaries([obj.message_id]).get(obj.message_id)
        return describe(s) if s else ""

    @admin.display(description=_("events"))
    def events(self, obj: TrackedMessage) -> str:
        return format_html('<a href="{}">list them</a>', _events_url(obj.pk))


def describe(s) -> str:
    """ "3 opens (1 likely machine), 1 click" for a TrackingSummary."""

    def part(n: int, machine: int, word: str) -> str:
        text = f"{n} {word}{'' if n == 1 else 's'}"
        return f"{text} ({machine} likely machine)" if machine else text

    return ", ".join(
        (part(s.opens, s.machine_opens, "open"), part(s.clicks, s.machine_clicks, "click"))
    )


# The captured message's page shows its tracking: added to the message admin's inlines here,
# so the message admin (capture/admin/messages.py) need not know about tracking.
if TrackingInline not in EmailMessageAdmin.inlines:
    EmailMessageAdmin.inlines = (*EmailMessageAdmin.inlines, TrackingInline)


def tracking_panel(request, record) -> str:
    """HTML for a contact's change page: the latest opens and clicks attributed to them (mail
    sent to them alone), as the viewer may see them."""
    if not isinstance(record, Contact):
        return ""
    attributed = TrackedContact.objects.filter(tracked=OuterRef("tracked_id"), contact=record)
    events = list(
        visible_events(request.user)
        .filter(tracked__mode=TrackedMessage.Mode.RECIPIENT)
        .filter(Exists(attributed))
        .select_related("tracked")
        .order_by("-id")[:CONTACT_PANEL_ROWS]
    )
    return render_to_string(
        "admin/capture/tracking_panel.html", {"events": events, "contact": record}, request=request
    )


register_record_panel(tracking_panel)
