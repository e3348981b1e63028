"""Values from mail that PostgreSQL refuses, or stores but no Python reads back, found by the
fuzz tests: each message ends processed and every row it made loads again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from capture.models import EmailMessage, Meeting, RawMessage
from capture.textsafe import INT4_MAX, storable_count, storable_moment
from tests.capture.fuzz.mutations import CALENDAR_HEAD, CALENDAR_TEXT
from tests.capture.pipeline.helpers import capture, make_mail

pytestmark = pytest.mark.django_db

Status = RawMessage.Status


def processed(data: bytes) -> EmailMessage:
    raw, outcome = capture(data)
    assert (outcome.status, outcome.reason_code) == (Status.PROCESSED, ""), (
        raw.reason_detail,
        raw.traceback,
    )
    return EmailMessage.objects.get(pk=outcome.email_id)


def invite(*replacements: tuple[bytes, bytes]) -> bytes:
    """calendar_invite.eml with lines of its calendar replaced, the calendar as 8bit text."""
    text = CALENDAR_TEXT
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    part = b"Content-Type: text/calendar; charset=utf-8; method=REQUEST\r\n\r\n"
    return CALENDAR_HEAD + part + text + b"\r\n--cal-b--\r\n"


def meeting_of(data: bytes) -> dict:
    email = processed(data)
    return Meeting.objects.filter(messages__email=email).values("sequence", "start", "end").get()


@pytest.mark.parametrize(
    ("sequence", "stored"),
    [(b"7", 7), (b"2147483647", INT4_MAX), (b"2147483648", 0), (b"9" * 30, 0), (b"\xc2\xb2", 0)],
)
def test_a_calendar_sequence_is_stored_only_when_an_integer_column_holds_it(sequence, stored):
    # "²" (str.isdigit() but not int()) rejected the whole message; 2**31 wrapped to -2**31
    meeting = meeting_of(invite((b"SEQUENCE:2", b"SEQUENCE:" + sequence)))
    assert meeting["sequence"] == stored


START = b"DTSTART;TZID=Europe/Berlin:20250310T100000"
END = b"DTEND;TZID=Europe/Berlin:20250310T110000"


@pytest.mark.parametrize(
    "replacements",
    [
        ((START, b"DTSTART;TZID=Etc/GMT-14:00010101T000000"),),  # 1 BC in UTC
        ((END, b"DTEND;TZID=Etc/GMT+12:99991231T235959"),),  # year 10000 in UTC
        ((END, b"DURATION:P9999999W"),),  # past year 9999
        ((END, b"DURATION:P99999999999999W"),),  # past what a timedelta holds
    ],
    ids=["start before year 1", "end after year 9999", "long duration", "huge duration"],
)
def test_a_meeting_time_outside_the_years_python_reads_is_left_empty(replacements):
    meeting = meeting_of(invite(*replacements))
    assert None in (meeting["start"], meeting["end"])


def test_storable_moment_keeps_every_time_inside_the_years_1_to_9999():
    inside = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    assert storable_moment(inside) is inside
    assert storable_moment(None) is None


def test_storable_count_takes_ascii_digits_only():
    assert [storable_count(t) for t in ("0", "42", " 4", "-1", "٣", "")] == [0, 42, 0, 0, 0, 0]


@pytest.mark.parametrize("length", [995, 996, 998])
def test_a_message_id_longer_than_its_column_gets_a_synthesised_one(length):
    message_id = "x@" + "d" * (length - 2)
    email = processed(make_mail(message_id=f"<{message_id}>"))
    if length <= 995:
        assert (email.message_id, email.message_id_synthesised) == (message_id, False)
    else:
        assert email.message_id_synthesised
        assert "invalid_message_id" in email.defects
