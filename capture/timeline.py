"""A CRM record's timeline: its captured mail and meetings, newest first, one entry a thread.

What "grouped by thread" means here: each entry is one thread linked to the record, shown by
its newest message the viewer may see (subject, date, kind, the Meeting's summary/start/end
for a meeting), with the thread's subject and message count. Entries are ordered by the
thread's last mail date (Thread.last_at), newest first, then thread id; a thread appears once
however many links lead to it. Pinned threads come first on the first page, newest pin first,
and are left out of the pages that follow.

A record's threads: those linked to it (capture.ThreadLink); for an organization also those
linked to its contacts ("mail linked to a contact shows on the contact's organization").

Cost: every link carries its thread's last_at (kept by capture.linking.sync_link_dates) and
a partial index (record, last_at, thread) per record column, so a page is an index range
read from the cursor: the same at 100k messages as at 100 (bench/timeline.py). An
organization reads one such range for itself and one per contact (one UNION ALL query on
PostgreSQL), so its cost follows its number of contacts, not its mail. A viewer who does not
see everything (capture/visibility.py) gets the same walk filtered by visibility: the walk
skips what they may not see.

Queries per page: pins, the page of links (plus the organization's contact ids), the page's
threads with their newest visible message id, and those messages with their meetings; two
more (the opens and clicks) when some of those messages were sent tracked.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery

from capture.errors import InputRejected
from capture.models import (
    EmailMessage,
    Meeting,
    MeetingMessage,
    Thread,
    ThreadLink,
    TimelinePin,
    TrackedMessage,
)
from capture.tracking.service import TrackingSummary, summaries
from capture.visibility import sees_everything, visible_emails, visible_threads
from crm.models import Contact, Item, Organization, User
from governance.audit import record_event

DEFAULT_SIZE = 25
MAX_SIZE = 100
MAX_PINS = 20

Record = Contact | Organization | Item
RECORD_TYPES: dict[type, str] = {
    Contact: TimelinePin.RecordType.CONTACT,
    Organization: TimelinePin.RecordType.ORGANIZATION,
    Item: TimelinePin.RecordType.ITEM,
}
EMAIL_FIELDS = (
    "id",
    "message_id",  # its tracking (opens and clicks), if it was sent tracked
    "thread_id",
    "kind",
    "subject",
    "date",
    "direction",
    "from_address",
    "from_name",
    "has_attachments",
    "categories",
)


class TimelineRejected(InputRejected):
    """A bad cursor or size, or a pin the viewer may not make."""


@dataclass(frozen=True)
class TimelineEntry:
    thread_id: int
    thread_subject: str
    message_count: int
    last_at: datetime | None
    pinned: bool
    email: EmailMessage | None  # the newest message the viewer may see (or the pinned one)
    meeting: Meeting | None = None  # the meeting that message carried, if any
    tracking: TrackingSummary | None = None  # that message's opens and clicks, if tracked


@dataclass
class TimelinePage:
    entries: list[TimelineEntry] = field(default_factory=list)
    next_cursor: str | None = None


def record_type_of(record: Record) -> str:
    return RECORD_TYPES[type(record)]


# --- cursors -------------------------------------------------------------------------------


def encode_cursor(last_at: datetime, thread_id: int) -> str:
    raw = f"{last_at.isoformat()}|{thread_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """(last_at, thread id) after which the next page starts; TimelineRejected if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, tid = raw.partition("|")
        last_at = datetime.fromisoformat(when)
        thread_id = int(tid)
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise TimelineRejected("bad_cursor", "not a cursor this endpoint returned") from e
    if last_at.tzinfo is None or thread_id < 1:
        raise TimelineRejected("bad_cursor", "not a cursor this endpoint returned")
    return last_at, thread_id


# --- the page ------------------------------------------------------------------------------


def timeline_page(
    record: Record, viewer: User, cursor: str | None = None, size: int = DEFAULT_SIZE
) -> TimelinePage:
    """One page of the record's timeline as `viewer` may see it (see the module docstring)."""
    if not 1 <= size <= MAX_SIZE:
        raise TimelineRejected("bad_size", f"1 to {MAX_SIZE}")
    after = decode_cursor(cursor) if cursor else None
    rtype = record_type_of(record)
    pins = list(
        TimelinePin.objects.filter(record_type=rtype, record_id=record.pk)
        .order_by("-created", "-id")
        .values_list("thread_id", "email_id")[:MAX_PINS]
    )
    pinned_threads = [t for t, _ in pins]
    rows = _link_page(record, viewer, after, size + 1, exclude=pinned_threads)
    more = len(rows) > size
    rows = rows[:size]
    shown_pins = pins if after is None else []
    wanted = [t for t, _ in shown_pins] + [tid for _, tid in rows]
    if not wanted:
        return TimelinePage()
    pinned_email = {t: e for t, e in shown_pins if e}
    threads = _threads_with_newest(viewer, wanted, pinned_email)
    email_ids = [t.shown_id for t in threads.values() if t.shown_id]
    tracked = TrackedMessage.objects.filter(message_id=OuterRef("message_id")).values("pk")[:1]
    emails = {
        e.pk: e
        for e in EmailMessage.objects.filter(pk__in=email_ids)
        .only(*EMAIL_FIELDS)
        .annotate(tracked_id=Subquery(tracked))  # tracking read only for pages that have some
    }
    meetings = {
        m.email_id: m.meeting
        for m in MeetingMessage.objects.filter(email_id__in=email_ids)
        .select_related("meeting")
        .only("email_id", "meeting__summary", "meeting__start", "meeting__end")
    }
    tracking = summaries(e.message_id for e in emails.values() if e.tracked_id)
    entries = []
    for tid in wanted:
        thread = threads.get(tid)
        if thread is None or not thread.shown_id:
            continue  # a pinned thread the viewer may not see
        entries.append(
            TimelineEntry(
                thread_id=tid,
                thread_subject=thread.subject,
                message_count=thread.message_count,
                last_at=thread.last_at,
                pinned=tid in pinned_threads,
                email=emails.get(thread.shown_id),
                meeting=meetings.get(thread.shown_id),
                tracking=(
                    tracking.get(emails[thread.shown_id].message_id)
                    if thread.shown_id in emails
                    else None
                ),
            )
        )
    next_cursor = encode_cursor(*rows[-1]) if more and rows else None
    return TimelinePage(entries=entries, next_cursor=next_cursor)


def _link_sources(record: Record) -> list[tuple[str, int]]:
    if isinstance(record, Organization):
        contacts = Contact.objects.filter(organization=record).values_list("pk", flat=True)
        return [("organization_id", record.pk)] + [("contact_id", c) for c in contacts]
    if isinstance(record, Contact):
        return [("contact_id", record.pk)]
    return [("item_id", record.pk)]


def _link_page(
    record: Record,
    viewer: User,
    after: tuple[datetime, int] | None,
    limit: int,
    *,
    exclude: list[int],
) -> list[tuple[datetime, int]]:
    """(last_at, thread id) of the next `limit` distinct threads of the record, newest first."""
    sources = _link_sources(record)

    def page_of(links: Q) -> QuerySet:
        """These links after the cursor, not excluded, on threads the viewer may see, newest first."""
        qs = ThreadLink.objects.filter(links, last_at__isnull=False)
        if after is not None:
            qs = qs.filter(Q(last_at__lt=after[0]) | Q(last_at=after[0], thread_id__lt=after[1]))
        if exclude:
            qs = qs.exclude(thread_id__in=exclude)
        if not sees_everything(viewer):
            qs = qs.filter(thread_id__in=visible_threads(viewer).values("pk"))
        return qs.order_by("-last_at", "-thread_id").values_list("last_at", "thread_id")

    def branch(column: str, pk: int) -> QuerySet:
        return page_of(Q(**{column: pk}))

    if len(sources) == 1:
        return list(branch(*sources[0])[:limit])
    if connection.features.supports_slicing_ordering_in_compound:
        # One index range per source, each cut at `limit`, in one query; merged here. Every
        # thread of the true next page is among the first `limit` of some source.
        first, *rest = [branch(c, pk)[:limit] for c, pk in sources]
        rows = list(first.union(*rest, all=True))
    else:  # SQLite: one query over all sources (correct; the per-source cut is PostgreSQL's)
        q = Q()
        for column, pk in sources:
            q |= Q(**{column: pk})
        rows = list(page_of(q).distinct()[: limit * len(sources)])
    seen: dict[int, datetime] = {}
    for last_at, tid in rows:
        seen.setdefault(tid, last_at)
    ordered = sorted(((at, tid) for tid, at in seen.items()), reverse=True)
    return ordered[:limit]


def _threads_with_newest(
    viewer: User, thread_ids: list[int], pinned_email: dict[int, int]
) -> dict[int, Thread]:
    """The threads, each annotated `shown_id`: its newest message the viewer may see."""
    emails = EmailMessage.objects.all() if sees_everything(viewer) else visible_emails(viewer)
    newest = emails.filter(thread_id=OuterRef("pk")).order_by("-date", "-id").values("pk")[:1]
    threads = {
        t.pk: t
        for t in Thread.objects.filter(pk__in=thread_ids)
        .annotate(shown_id=Subquery(newest))
        .only("id", "subject", "message_count", "last_at")
    }
    if pinned_email:
        allowed = set(
            emails.filter(pk__in=list(pinned_email.values())).values_list("pk", flat=True)
        )
        for tid, eid in pinned_email.items():
            if tid in threads and eid in allowed and threads[tid].shown_id:
                threads[tid].shown_id = eid
    return threads


# --- pins ----------------------------------------------------------------------------------


def record_has_thread(record: Record, thread_id: int) -> bool:
    """Whether the thread is on the record's timeline (linked to it, or to its contacts)."""
    q = Q()
    for column, pk in _link_sources(record):
        q |= Q(**{column: pk})
    return ThreadLink.objects.filter(q, thread_id=thread_id).exists()


def pin_timeline_entry(
    record: Record,
    viewer: User,
    *,
    thread_id: int | None = None,
    email_id: int | None = None,
    actor: Any,
    channel: str,
    address: str = "",
) -> TimelinePin:
    """Pin a thread (or one message of it) to the top of the record's timeline."""
    if (thread_id is None) == (email_id is None):
        raise TimelineRejected("bad_pin", "give a thread or an email")
    email = None
    if email_id is not None:
        email = visible_emails(viewer).filter(pk=email_id).only("id", "thread_id").first()
        if email is None:
            raise TimelineRejected("not_found", "no such email")
        thread_id = email.thread_id
    elif not visible_threads(viewer).filter(pk=thread_id).exists():
        raise TimelineRejected("not_found", "no such thread")
    assert thread_id is not None
    if not record_has_thread(record, thread_id):
        raise TimelineRejected("not_on_timeline", "the thread is not linked to this record")
    rtype = record_type_of(record)
    with transaction.atomic():
        if TimelinePin.objects.filter(record_type=rtype, record_id=record.pk).count() >= MAX_PINS:
            existing = TimelinePin.objects.filter(
                record_type=rtype, record_id=record.pk, thread_id=thread_id
            ).first()
            if existing is None:
                raise TimelineRejected("too_many_pins", f"at most {MAX_PINS} a record")
        pin, created = TimelinePin.objects.update_or_create(
            record_type=rtype,
            record_id=record.pk,
            thread_id=thread_id,
            defaults={"email": email, "created_by": viewer},
        )
        record_event(
            "timeline.pinned",
            actor=actor,
            obj=pin,
            channel=channel,
            address=address,
            detail={
                "record_type": rtype,
                "record_id": record.pk,
                "thread": thread_id,
                "email": email.pk if email else None,
                "created": created,
            },
        )
    return pin


def remove_pins(pins: list[TimelinePin], *, actor: Any, channel: str, address: str = "") -> int:
    """Delete these pins (an admin's cleanup; a deleted record's pins too); returns how many."""
    removed = 0
    with transaction.atomic():
        for pin in pins:
            record_event(
                "timeline.unpinned",
                actor=actor,
                obj=pin,
                channel=channel,
                address=address,
                detail={
                    "record_type": pin.record_type,
                    "record_id": pin.record_id,
                    "thread": pin.thread_id,
                },
            )
            pin.delete()
            removed += 1
    return removed


def unpin_timeline_entry(
    record: Record, *, thread_id: int, actor: Any, channel: str, address: str = ""
) -> bool:
    """Remove the record's pin of the thread; False if it was not pinned."""
    rtype = record_type_of(record)
    with transaction.atomic():
        pin = TimelinePin.objects.filter(
            record_type=rtype, record_id=record.pk, thread_id=thread_id
        ).first()
        if pin is None:
            return False
        record_event(
            "timeline.unpinned",
            actor=actor,
            obj=pin,
            channel=channel,
            address=address,
            detail={"record_type": rtype, "record_id": record.pk, "thread": thread_id},
        )
        pin.delete()
    return True
