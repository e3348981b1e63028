"""Meetings as records keyed by UID, from real-shaped invites: every VEVENT stored, a later
REQUEST (SEQUENCE+1) updates, an older one arriving late does not, a CANCEL cancels the series
or one occurrence, a RECURRENCE-ID moves one occurrence; written in bulk per batch."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from capture.meetings import MAX_OCCURRENCES, meeting_occurrences
from capture.models import (
    EmailMessage,
    MailboxConnection,
    Meeting,
    MeetingMessage,
    MeetingOverride,
    RawMessage,
)
from capture.pipeline import process_raw_messages
from governance.models import AuditEvent
from tests.capture.meetings.ics import (
    GOOGLE_ZONE,
    OUTLOOK_UID,
    calendar,
    invite_mail,
    vevent,
)
from tests.capture.pipeline.helpers import capture, store
from tests.factories import make_mailbox, make_user

pytestmark = pytest.mark.django_db

SERIES = {"rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=8", "exdate": "20250317T100000"}
MARCH = datetime(2025, 3, 1, tzinfo=UTC)
MAY = datetime(2025, 5, 1, tzinfo=UTC)


def captured(data: bytes) -> EmailMessage:
    raw, outcome = capture(data)
    assert outcome.status == RawMessage.Status.PROCESSED, (raw.reason_code, raw.traceback)
    return EmailMessage.objects.get(pk=outcome.email_id)


def series_invite(message_id: str = "<invite-1@acme-widgets.com>", **fields) -> bytes:
    return invite_mail(calendar("REQUEST", vevent(**{**SERIES, **fields})), message_id=message_id)


def starts(meeting: Meeting) -> list[datetime]:
    return [o.start.astimezone(UTC) for o in meeting_occurrences(meeting, MARCH, MAY)]


def test_an_outlook_series_is_one_meeting_with_its_timezone_recurrence_and_people():
    email = captured(series_invite())
    meeting = Meeting.objects.get()
    assert meeting.uid == OUTLOOK_UID
    assert meeting.status == Meeting.Status.CONFIRMED
    assert meeting.timezone == "W. Europe Standard Time"
    assert meeting.start == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    assert meeting.rrule == "FREQ=WEEKLY;BYDAY=MO;COUNT=8"
    assert meeting.exdate == ["2025-03-17T10:00:00+01:00"]
    assert meeting.location == "Room 4.12; Berlin office"
    assert meeting.organizer == "jane.doe@acme-widgets.com"
    assert list(meeting.emails.all()) == [email]
    # The stored iCalendar text keeps the timing only: no summary, place, people or agenda.
    assert "DTSTART;TZID=W. Europe Standard Time:20250303T100000" in meeting.timing
    assert "BEGIN:VTIMEZONE" in meeting.timing
    for absent in ("SUMMARY", "LOCATION", "ATTENDEE", "ORGANIZER", "DESCRIPTION", "VALARM"):
        assert absent not in meeting.timing


def test_the_series_expands_weekly_without_the_excluded_date_and_across_the_dst_change():
    captured(series_invite())
    meeting = Meeting.objects.get()
    assert starts(meeting) == [
        datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        datetime(2025, 3, 10, 9, 0, tzinfo=UTC),
        # 17 March excluded
        datetime(2025, 3, 24, 9, 0, tzinfo=UTC),
        datetime(2025, 3, 31, 8, 0, tzinfo=UTC),  # 10:00 in Berlin, now summer time
        datetime(2025, 4, 7, 8, 0, tzinfo=UTC),
        datetime(2025, 4, 14, 8, 0, tzinfo=UTC),
        datetime(2025, 4, 21, 8, 0, tzinfo=UTC),
    ]


def test_a_later_request_with_a_higher_sequence_moves_the_series():
    captured(series_invite())
    update = captured(
        series_invite(
            "<invite-2@acme-widgets.com>",
            sequence=1,
            dtstamp="20250302T080000Z",
            start="20250303T140000",
            end="20250303T150000",
            exdate="",
        )
    )
    meeting = Meeting.objects.get()
    assert meeting.sequence == 1
    assert meeting.start == datetime(2025, 3, 3, 13, 0, tzinfo=UTC)
    assert starts(meeting)[2] == datetime(2025, 3, 17, 13, 0, tzinfo=UTC)
    assert meeting.messages.get(email=update).applied is True
    assert meeting.messages.count() == 2
    assert AuditEvent.objects.filter(action="meeting.updated", object_id=str(meeting.pk)).exists()


def test_an_older_request_arriving_late_does_not_overwrite_the_newer_state():
    captured(series_invite("<invite-2@acme-widgets.com>", sequence=2, start="20250303T140000"))
    late = captured(series_invite("<invite-1@acme-widgets.com>", sequence=1))
    meeting = Meeting.objects.get()
    assert (meeting.sequence, meeting.start) == (2, datetime(2025, 3, 3, 13, 0, tzinfo=UTC))
    link = meeting.messages.get(email=late)
    assert link.applied is False
    assert link.sequence == 1


def test_the_same_sequence_with_a_later_dtstamp_updates_and_an_earlier_one_does_not():
    captured(series_invite(dtstamp="20250301T080000Z"))
    captured(
        series_invite("<b@acme-widgets.com>", dtstamp="20250301T090000Z", summary="Renamed sync")
    )
    captured(
        series_invite("<c@acme-widgets.com>", dtstamp="20250301T070000Z", summary="Stale name")
    )
    assert Meeting.objects.get().summary == "Renamed sync"


def test_a_cancel_of_the_series_cancels_the_meeting_and_leaves_no_occurrences():
    captured(series_invite())
    cancel = captured(
        invite_mail(
            calendar("CANCEL", vevent(**SERIES, sequence=1, status="CANCELLED")),
            message_id="<cancel@acme-widgets.com>",
            method="CANCEL",
            subject="Canceled: Weekly widget sync",
        )
    )
    meeting = Meeting.objects.get()
    assert meeting.status == Meeting.Status.CANCELLED
    assert meeting_occurrences(meeting, MARCH, MAY) == []
    assert meeting.messages.get(email=cancel).method == "CANCEL"
    assert AuditEvent.objects.filter(action="meeting.cancelled").count() == 1


def test_a_cancel_of_one_occurrence_removes_only_that_occurrence():
    captured(series_invite())
    captured(
        invite_mail(
            calendar(
                "CANCEL",
                vevent(
                    recurrence_id="20250324T100000",
                    start="20250324T100000",
                    end="20250324T110000",
                    sequence=1,
                    status="CANCELLED",
                ),
            ),
            message_id="<cancel-24@acme-widgets.com>",
            method="CANCEL",
        )
    )
    meeting = Meeting.objects.get()
    assert meeting.status == Meeting.Status.CONFIRMED
    found = starts(meeting)
    assert datetime(2025, 3, 24, 9, 0, tzinfo=UTC) not in found
    assert len(found) == 6
    override = MeetingOverride.objects.get()
    assert override.status == Meeting.Status.CANCELLED
    assert override.recurrence_id == datetime(2025, 3, 24, 9, 0, tzinfo=UTC)


def test_an_occurrence_moved_by_recurrence_id_is_expanded_at_its_new_time():
    captured(series_invite())
    captured(
        invite_mail(
            calendar(
                "REQUEST",
                vevent(
                    recurrence_id="20250407T100000",
                    start="20250408T153000",
                    end="20250408T163000",
                    sequence=1,
                    summary="Weekly widget sync (moved to Tuesday)",
                ),
            ),
            message_id="<moved@acme-widgets.com>",
        )
    )
    meeting = Meeting.objects.get()
    assert meeting.sequence == 0  # the series itself did not change
    occurrences = meeting_occurrences(meeting, MARCH, MAY)
    moved = [o for o in occurrences if o.moved]
    assert len(moved) == 1
    assert moved[0].start.astimezone(UTC) == datetime(2025, 4, 8, 13, 30, tzinfo=UTC)
    assert moved[0].recurrence_id.astimezone(UTC) == datetime(2025, 4, 7, 8, 0, tzinfo=UTC)
    assert moved[0].summary == "Weekly widget sync (moved to Tuesday)"
    assert datetime(2025, 4, 7, 8, 0, tzinfo=UTC) not in starts(meeting)
    assert len(occurrences) == 7


def test_an_invite_with_two_vevents_stores_both_meetings():
    """Google sends a series and its exception in one invite; a booking tool sends two
    separate meetings in one file: every VEVENT counts, not just the first."""
    email = captured(
        invite_mail(
            calendar(
                "REQUEST",
                vevent(uid="kickoff-1@google.com", tz="TZID=Europe/Berlin", summary="Kick-off"),
                vevent(
                    uid="review-2@google.com",
                    tz="TZID=Europe/Berlin",
                    start="20250305T090000",
                    end="20250305T100000",
                    summary="Design review",
                ),
                zone=GOOGLE_ZONE,
            ),
            message_id="<two@acme-widgets.com>",
        )
    )
    assert sorted(Meeting.objects.values_list("summary", flat=True)) == [
        "Design review",
        "Kick-off",
    ]
    assert MeetingMessage.objects.filter(email=email).count() == 2
    review = Meeting.objects.get(uid="review-2@google.com")
    assert review.start == datetime(2025, 3, 5, 8, 0, tzinfo=UTC)


def test_a_series_and_its_exception_in_one_invite_make_one_meeting_with_an_override():
    captured(
        invite_mail(
            calendar(
                "REQUEST",
                vevent(**SERIES),
                vevent(
                    recurrence_id="20250310T100000",
                    start="20250310T120000",
                    end="20250310T130000",
                ),
            ),
            message_id="<series-and-exception@acme-widgets.com>",
        )
    )
    meeting = Meeting.objects.get()
    assert meeting.rrule == SERIES["rrule"]
    assert meeting.messages.count() == 1
    assert meeting.messages.get().recurrence_id is None
    assert datetime(2025, 3, 10, 11, 0, tzinfo=UTC) in starts(meeting)
    assert datetime(2025, 3, 10, 9, 0, tzinfo=UTC) not in starts(meeting)


def test_invite_update_and_cancel_in_one_batch_end_in_the_newest_state():
    raws = [
        store(series_invite()),
        store(
            invite_mail(
                calendar("REQUEST", vevent(**SERIES, sequence=1, start="20250303T110000")),
                message_id="<update@acme-widgets.com>",
                date=datetime(2025, 3, 1, 9, 0, tzinfo=UTC),
            )
        ),
        store(
            invite_mail(
                calendar("CANCEL", vevent(**SERIES, sequence=2)),
                message_id="<cancel@acme-widgets.com>",
                method="CANCEL",
                date=datetime(2025, 3, 1, 10, 0, tzinfo=UTC),
            )
        ),
    ]
    process_raw_messages([r.pk for r in raws])
    meeting = Meeting.objects.get()
    assert (meeting.status, meeting.sequence) == (Meeting.Status.CANCELLED, 2)
    assert meeting.start == datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    assert meeting.messages.filter(applied=True).count() == 3


def test_a_batch_of_invites_reads_and_writes_meetings_in_a_fixed_number_of_queries():
    def batch(n: int, offset: int) -> list[int]:
        return [
            store(
                invite_mail(
                    calendar("REQUEST", vevent(uid=f"uid-{offset + i}@acme-widgets.com")),
                    message_id=f"<inv-{offset + i}@acme-widgets.com>",
                    subject=f"Call {offset + i} about widgets",
                )
            ).pk
            for i in range(n)
        ]

    def meeting_queries(ids: list[int]) -> int:
        with CaptureQueriesContext(connection) as queries:
            process_raw_messages(ids)
        return sum(bool(re.search(r'"?capture_meeting', q["sql"])) for q in queries)

    few, many = meeting_queries(batch(2, 0)), meeting_queries(batch(12, 100))
    assert Meeting.objects.count() == 14
    assert many == few <= 4


def test_an_update_through_a_metadata_only_mailbox_keeps_no_summary_or_location():
    captured(series_invite())
    owner = make_user()
    box = make_mailbox(owner, visibility=MailboxConnection.Visibility.METADATA)
    raw, outcome = capture(
        series_invite("<update@acme-widgets.com>", sequence=1, start="20250303T120000"),
        RawMessage.Channel.IMAP,
        user_id=owner.pk,
        mailbox_id=box.pk,
    )
    assert outcome.status == RawMessage.Status.PROCESSED, raw.reason_code
    meeting = Meeting.objects.get()
    assert meeting.start == datetime(2025, 3, 3, 11, 0, tzinfo=UTC)
    assert (meeting.summary, meeting.location) == ("", "")


def test_a_long_window_is_expanded_piecewise_without_gaps_or_repeats():
    """Windows of 32, 64, 128 ... days: an occurrence running across a window's edge (here
    each lasts 30 hours) comes once, and none is missing (the local time stays 10:00
    across the DST change)."""
    captured(series_invite(rrule="FREQ=DAILY;COUNT=150", exdate="", end="20250304T160000"))
    meeting = Meeting.objects.get()
    got = meeting_occurrences(meeting, MARCH, MARCH + timedelta(days=200))
    assert len(got) == 150
    assert [o.start.date() for o in got] == [
        (datetime(2025, 3, 3) + timedelta(days=i)).date() for i in range(150)
    ]
    assert {(o.start.hour, o.start.minute) for o in got} == {(10, 0)}
    # a window starting inside a running occurrence gives it first, once
    inside = meeting_occurrences(meeting, datetime(2025, 4, 10, 12, tzinfo=UTC), MAY)
    assert inside[0].start.date() == datetime(2025, 4, 9).date()
    assert len({o.start for o in inside}) == len(inside)


def test_expansion_is_capped_per_window():
    captured(series_invite(rrule="FREQ=DAILY", exdate=""))
    meeting = Meeting.objects.get()
    ten_years = meeting_occurrences(meeting, MARCH, MARCH + timedelta(days=3650))
    assert len(ten_years) == MAX_OCCURRENCES
    assert len(meeting_occurrences(meeting, MARCH, MAY, limit=5)) == 5
