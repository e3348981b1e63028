"""Meetings as records of their own: one `Meeting` per iCalendar UID.

The pipeline queues every VEVENT of a message's calendar (`capture.store.store_meeting`);
`store_meetings` writes a batch's events in a few statements: the batch's UIDs are inserted
when new (ON CONFLICT DO NOTHING, in UID order), then all its meetings are read and locked in
one query, so two workers carrying the same UID take turns on that row and the second sees
the first's state. A REQUEST with a higher SEQUENCE (or the same SEQUENCE and a later
DTSTAMP) replaces the state; an older one only records that its message carried the meeting;
a CANCEL marks the meeting, or with a RECURRENCE-ID one occurrence, cancelled. An event with
a RECURRENCE-ID changes one occurrence (a `MeetingOverride`), never the series.

`meeting_occurrences` expands a series for a time window with recurring-ical-events (RRULE,
RDATE, EXDATE, moved occurrences by RECURRENCE-ID, cancelled ones removed), capped.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import icalendar
import recurring_ical_events
from django.utils import timezone

from capture.context import BatchContext, Work
from capture.mime import CalendarEvent
from capture.models import EmailMessage, Meeting, MeetingMessage, MeetingOverride
from core.db.bulk import bulk_insert, new_row
from governance.audit import Actor, build_event

log = logging.getLogger(__name__)

Status = Meeting.Status
# A row inserted for a new UID before its first event is applied (never committed as such).
PLACEHOLDER = -1
# Methods whose events carry the organizer's state (RFC 5546); REPLY, COUNTER, REFRESH and
# DECLINECOUNTER only record that the message carried the meeting.
UPDATING = frozenset({"", "REQUEST", "PUBLISH", "ADD"})
# Occurrences returned for one window at most.
MAX_OCCURRENCES = 500
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_MASTER_FIELDS = [
    "method",
    "status",
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
    "timing",
    "updated",
]
_OVERRIDE_FIELDS = [
    "status",
    "summary",
    "location",
    "start",
    "end",
    "sequence",
    "dtstamp",
    "timing",
]


@dataclass(frozen=True)
class Occurrence:
    start: datetime
    end: datetime | None
    recurrence_id: datetime | None  # the start the series gave it (differs when moved)
    summary: str
    location: str
    status: str
    moved: bool


def meeting_uid(event: CalendarEvent, email: EmailMessage, index: int) -> str:
    """The event's UID, or one made from its message for an event without a UID."""
    uid = event.uid.strip()
    if uid:
        return uid[:255]
    digest = hashlib.sha256(email.message_id.encode()).hexdigest()[:32]
    return f"mailwarden-no-uid-{digest}-{index}"


def store_meetings(ctx: BatchContext) -> None:
    """Write the meetings of a batch's new messages (queued by store_meeting), in bulk."""
    queued = ctx.new_meetings
    if not queued:
        return
    keyed = [(meeting_uid(e, w.email, i), w, e) for i, (w, e) in enumerate(queued)]
    uids = sorted({uid for uid, _, _ in keyed})
    now = ctx.now or timezone.now()
    bulk_insert(
        Meeting,
        [new_row(Meeting, uid=uid, sequence=PLACEHOLDER, created=now, updated=now) for uid in uids],
        ignore_conflicts=True,
    )
    meetings = {
        m.uid: m
        for m in Meeting.objects.select_for_update(of=("self",))
        .filter(uid__in=uids)
        .order_by("uid")
    }
    overrides: dict[tuple[int, datetime], MeetingOverride] = {}
    if any(e.recurrence_id for _, _, e in keyed):
        for o in MeetingOverride.objects.filter(meeting__in=[m.pk for m in meetings.values()]):
            overrides[(o.meeting_id, o.recurrence_id)] = o
    new_overrides: list[MeetingOverride] = []
    changed: dict[int, Meeting] = {}
    changed_overrides: dict[int, MeetingOverride] = {}
    links: dict[tuple[int, int], MeetingMessage] = {}
    for uid, work, event in keyed:
        meeting = meetings[uid]
        email = work.email
        assert email is not None
        if event.recurrence_id is None:
            change = apply_to_series(meeting, event, work)
            if change:
                changed[meeting.pk] = meeting
        else:
            key = (meeting.pk, event.recurrence_id)
            override = overrides.get(key)
            if override is None:
                override = overrides[key] = MeetingOverride(
                    meeting=meeting, recurrence_id=event.recurrence_id, sequence=PLACEHOLDER
                )
                new_overrides.append(override)
            change = apply_to_occurrence(override, event, work)
            if change and override.pk:
                changed_overrides[override.pk] = override
            if meeting.sequence == PLACEHOLDER:
                # Only an occurrence of this series has been seen: describe the meeting by it.
                describe(meeting, event, work)
                meeting.sequence = 0
                changed[meeting.pk] = meeting
        link = links.get((meeting.pk, email.pk))
        if link is None:
            links[(meeting.pk, email.pk)] = new_row(
                MeetingMessage,
                meeting=meeting,
                email=email,
                method=(event.method or "")[:20],
                sequence=event.sequence,
                recurrence_id=event.recurrence_id,
                applied=bool(change),
            )
        else:
            if event.recurrence_id is None:
                link.recurrence_id = None
            link.applied = link.applied or bool(change)
        if change:
            ctx.audit.append(
                build_event(
                    f"meeting.{change}",
                    actor=Actor("worker", work.raw.user_id, "pipeline"),
                    obj=meeting,
                    channel=work.raw.channel,
                    detail={
                        "email": email.pk,
                        "sequence": event.sequence,
                        "method": event.method or "",
                        "occurrence": event.recurrence_id is not None,
                    },
                )
            )
    for meeting in changed.values():
        meeting.updated = now
    if changed:
        Meeting.objects.bulk_update(list(changed.values()), _MASTER_FIELDS, batch_size=200)
    bulk_insert(MeetingOverride, new_overrides)
    if changed_overrides:
        MeetingOverride.objects.bulk_update(
            list(changed_overrides.values()), _OVERRIDE_FIELDS, batch_size=200
        )
    bulk_insert(MeetingMessage, list(links.values()))
    queued.clear()


def _stamp(event: CalendarEvent, work: Work) -> datetime:
    if event.dtstamp is not None:
        return event.dtstamp
    assert work.parsed is not None
    return work.parsed.date


def _newer(event: CalendarEvent, work: Work, sequence: int, dtstamp: datetime | None) -> bool:
    return (event.sequence, _stamp(event, work)) > (sequence, dtstamp or _EARLIEST)


def _cancels(event: CalendarEvent) -> bool:
    return event.method == "CANCEL" or event.status == "CANCELLED"


def _state(event: CalendarEvent) -> str:
    if _cancels(event):
        return Status.CANCELLED
    return Status.TENTATIVE if event.status == "TENTATIVE" else Status.CONFIRMED


def _content(event: CalendarEvent, work: Work) -> tuple[str, str]:
    """(summary, location) as the message's storage level allows (none when metadata-only)."""
    summary = event.summary if work.stored != EmailMessage.Stored.METADATA else ""
    location = event.location if work.stored == EmailMessage.Stored.FULL else ""
    return summary, location


def describe(meeting: Meeting, event: CalendarEvent, work: Work) -> None:
    """Set the meeting's state from one event of the series."""
    summary, location = _content(event, work)
    meeting.method = (event.method or "")[:20]
    meeting.status = _state(event)
    meeting.summary = summary
    meeting.location = location
    meeting.organizer = event.organizer.address if event.organizer else ""
    meeting.attendees = [{"address": a.address, "name": a.name} for a in event.attendees]
    meeting.start = event.start
    meeting.end = event.end
    meeting.timezone = event.timezone[:64]
    meeting.rrule = event.rrule[:500]
    meeting.rdate = [d.isoformat() for d in event.rdate]
    meeting.exdate = [d.isoformat() for d in event.exdate]
    meeting.sequence = event.sequence
    meeting.dtstamp = _stamp(event, work)
    meeting.timing = event.timing if event.recurrence_id is None else ""


def apply_to_series(meeting: Meeting, event: CalendarEvent, work: Work) -> str:
    """Apply one series event; returns what changed ("created", "updated", "cancelled") or ""."""
    if meeting.sequence == PLACEHOLDER:
        describe(meeting, event, work)
        return "cancelled" if meeting.status == Status.CANCELLED else "created"
    if _cancels(event):
        # A CANCEL of the same SEQUENCE still cancels (clients often do not increment it).
        key = (event.sequence, _stamp(event, work))
        if key < (meeting.sequence, meeting.dtstamp or _EARLIEST):
            return ""
        meeting.status = Status.CANCELLED
        meeting.method = (event.method or "")[:20]
        meeting.sequence = event.sequence
        meeting.dtstamp = key[1]
        return "cancelled"
    if event.method not in UPDATING or not _newer(event, work, meeting.sequence, meeting.dtstamp):
        return ""
    describe(meeting, event, work)
    return "updated"


def apply_to_occurrence(override: MeetingOverride, event: CalendarEvent, work: Work) -> str:
    """Apply an event with a RECURRENCE-ID to its occurrence; returns what changed or ""."""
    new = override.sequence == PLACEHOLDER
    if not new:
        if _cancels(event):
            key = (event.sequence, _stamp(event, work))
            if key < (override.sequence, override.dtstamp or _EARLIEST):
                return ""
        elif event.method not in UPDATING or not _newer(
            event, work, override.sequence, override.dtstamp
        ):
            return ""
    summary, location = _content(event, work)
    override.status = _state(event)
    override.summary = summary
    override.location = location
    override.start = event.start
    override.end = event.end
    override.sequence = event.sequence
    override.dtstamp = _stamp(event, work)
    override.timing = event.timing
    return "occurrence_cancelled" if override.status == Status.CANCELLED else "occurrence_updated"


# --- expansion ---------------------------------------------------------------------------------


def _as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    raise TypeError(f"not a date: {value!r}")


def _calendar(meeting: Meeting, overrides: list[MeetingOverride]) -> icalendar.Calendar:
    """One calendar of the series' timing and its moved occurrences, VTIMEZONEs once each."""
    texts = [t for t in [meeting.timing, *(o.timing for o in overrides)] if t]
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Mailwarden//meetings//EN")
    cal.add("version", "2.0")
    zones: set[str] = set()
    for text in texts:
        for component in icalendar.Calendar.from_ical(text).subcomponents:
            if component.name == "VTIMEZONE":
                tzid = str(component.get("TZID", ""))
                if tzid in zones:
                    continue
                zones.add(tzid)
            if component.name == "VEVENT":
                component.pop("STATUS", None)  # cancelled occurrences are removed below
            cal.add_component(component)
    return cal


def _in_windows(query, start: datetime, end: datetime):
    """The occurrences overlapping [start, end) in order, expanded a window at a time (32
    days, then twice as long each time) so a caller that stops early pays for little more
    than it took. `between` walks the series once per call; `after` re-walked it for every
    occurrence (500 occurrences of a daily series: ~40 s; a year of them by `between`: 0.15 s,
    tests/capture/meetings/test_store.py)."""
    low, span = start, timedelta(days=32)
    while low < end:
        high = min(end, low + span)
        found = sorted(query.between(low, high), key=lambda c: _as_datetime(c["DTSTART"].dt))
        for component in found:
            # one that began before this window overlapped the previous one: already given
            if low == start or _as_datetime(component["DTSTART"].dt) >= low:
                yield component
        low, span = high, span * 2


def meeting_occurrences(
    meeting: Meeting, start: datetime, end: datetime, limit: int = MAX_OCCURRENCES
) -> list[Occurrence]:
    """The meeting's occurrences overlapping [start, end), in order, at most `limit`."""
    if meeting.status == Status.CANCELLED or end <= start:
        return []
    overrides = list(meeting.overrides.all())
    cancelled = {o.recurrence_id for o in overrides if o.status == Status.CANCELLED}
    moved = {o.recurrence_id: o for o in overrides if o.status != Status.CANCELLED}
    if not meeting.timing:
        return _single(meeting, start, end)
    try:
        query = recurring_ical_events.of(_calendar(meeting, list(moved.values())))
        out: list[Occurrence] = []
        for component in _in_windows(query, start, end):
            begins = _as_datetime(component["DTSTART"].dt)
            if begins >= end or len(out) >= limit:
                break
            rid_prop = component.get("RECURRENCE-ID")
            rid = _as_datetime(rid_prop.dt) if rid_prop is not None else begins
            if rid in cancelled:
                continue
            finish = component.get("DTEND")
            override = moved.get(rid)
            out.append(
                Occurrence(
                    start=begins,
                    end=_as_datetime(finish.dt) if finish is not None else None,
                    recurrence_id=rid,
                    summary=override.summary if override and override.summary else meeting.summary,
                    location=override.location
                    if override and override.location
                    else meeting.location,
                    status=override.status if override else meeting.status,
                    moved=override is not None and begins != rid,
                )
            )
        return out
    except Exception:  # a calendar the library cannot expand: show the first occurrence
        log.warning("meeting %s could not be expanded", meeting.pk, exc_info=True)
        return _single(meeting, start, end)


def _single(meeting: Meeting, start: datetime, end: datetime) -> list[Occurrence]:
    if meeting.start is None:
        return []
    finish = meeting.end or meeting.start
    if meeting.start >= end or (finish <= start and meeting.start < start):
        return []
    return [
        Occurrence(
            start=meeting.start,
            end=meeting.end,
            recurrence_id=None,
            summary=meeting.summary,
            location=meeting.location,
            status=meeting.status,
            moved=False,
        )
    ]


__all__ = [
    "MAX_OCCURRENCES",
    "Occurrence",
    "meeting_occurrences",
    "meeting_uid",
    "store_meetings",
]
