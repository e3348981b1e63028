"""Threads, messages and links built directly (the pipeline has its own tests): a thread of
n messages linked to a record, with the link dates the pipeline would keep."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from capture.models import EmailMessage, Meeting, MeetingMessage, Thread, ThreadLink
from capture.pipeline import refresh_thread_stats

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
_seq = itertools.count(1)


def make_thread(
    *records, n: int = 1, start: datetime = T0, owner=None, private: bool = False, kind="email"
) -> Thread:
    """A thread of `n` messages an hour apart from `start`, linked to each record."""
    thread = Thread.objects.create(subject=f"Thread {next(_seq)}", owner=owner, private=private)
    for i in range(n):
        email = EmailMessage.objects.create(
            message_id=f"<m{next(_seq)}@test>",
            thread=thread,
            kind=kind,
            subject=f"{thread.subject} #{i + 1}",
            date=start + timedelta(hours=i),
            from_address="tom@globex.example",
        )
        if kind == EmailMessage.Kind.MEETING:
            meeting = Meeting.objects.create(
                uid=f"meeting-{email.pk}@test",
                summary="Quarterly review",
                start=start + timedelta(days=7),
                end=start + timedelta(days=7, hours=1),
            )
            MeetingMessage.objects.create(meeting=meeting, email=email, method="REQUEST")
    for record in records:
        field = type(record).__name__.lower()
        ThreadLink.objects.create(thread=thread, source=ThreadLink.Source.MANUAL, **{field: record})
    refresh_thread_stats({thread.pk})  # counts, dates, and the links' copy of last_at
    thread.refresh_from_db()
    return thread
