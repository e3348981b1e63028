"""Two workers carrying the same meeting UID at the same time (PostgreSQL, real transactions):
one Meeting row, the newer SEQUENCE wins whichever worker commits first (the row is locked:
no lost update), every message is recorded. The workers are held until both loaded their batch, so the race is forced."""

from __future__ import annotations

import pytest

from capture.models import Meeting, MeetingMessage, RawMessage
from capture.pipeline import process_raw_messages
from tests.capture.meetings.ics import calendar, invite_mail, vevent
from tests.capture.pipeline.helpers import store
from tests.capture.pipeline.test_concurrency import both_load_before_either_writes, run_workers
from tests.factories import make_user, set_org_settings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("newer_first", [True, False])
def test_two_workers_with_the_same_uid_make_one_meeting_in_its_newest_state(
    monkeypatch, newer_first
):
    set_org_settings()
    make_user(email="sam.seller@mailwarden-demo.com")
    base = store(
        invite_mail(calendar("REQUEST", vevent(sequence=0)), message_id="<v0@acme-widgets.com>")
    )
    assert process_raw_messages([base.pk])[0].status == RawMessage.Status.PROCESSED
    older = store(
        invite_mail(
            calendar("REQUEST", vevent(sequence=1, start="20250303T120000", end="20250303T130000")),
            message_id="<v1@acme-widgets.com>",
        )
    )
    newer = store(
        invite_mail(
            calendar("REQUEST", vevent(sequence=2, start="20250303T150000", end="20250303T160000")),
            message_id="<v2@acme-widgets.com>",
        )
    )
    both_load_before_either_writes(monkeypatch)
    batches = [[newer.pk], [older.pk]] if newer_first else [[older.pk], [newer.pk]]
    results = run_workers(batches)
    assert [o.status for r in results for o in r] == [RawMessage.Status.PROCESSED] * 2
    meeting = Meeting.objects.get()
    assert meeting.sequence == 2
    assert meeting.start.hour == 14  # 15:00 in Berlin, winter time
    assert MeetingMessage.objects.filter(meeting=meeting).count() == 3
