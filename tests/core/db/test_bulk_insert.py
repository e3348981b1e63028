"""core.db.bulk.bulk_insert: bulk_create for the pipeline's rows (one statement per chunk on
PostgreSQL, Django's bulk_create elsewhere); rows come back with their keys and every value
(text with quotes and backslashes, JSON, NULL foreign keys, timestamps) stored as given."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import Value
from django.test.utils import CaptureQueriesContext

from capture.models import EmailMessage, MessageRef, Participant, Thread
from core.db.bulk import bulk_insert, insert_skipping_conflicts

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AWKWARD = 'a "quoted", {braced} \\ back\\slashed NULL\ttabbed\nline ünïcödé'


def inserts(queries) -> int:
    return len([q for q in queries if q["sql"].lstrip().upper().startswith("INSERT")])


def test_rows_get_their_keys_and_values_round_trip():
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    emails = [
        EmailMessage(
            message_id=f"m{i}@x",
            thread=thread,
            date=WHEN,
            subject=AWKWARD,
            text_body=AWKWARD * 200,
            headers=[["Subject", AWKWARD], ["X-Empty", ""]],
            references=[],
            defects=["NoBoundaryInMultipart"] if i else [],
        )
        for i in range(3)
    ]
    assert insert_skipping_conflicts(EmailMessage, emails, "message_id") == set()
    people = [
        Participant(email=emails[0], role="from", address="a@x", candidates=[3, 1]),
        Participant(email=emails[1], role="to", address="", name=AWKWARD),
        Participant(email=emails[2], role="cc", address="null", match="ambiguous"),
    ]
    with CaptureQueriesContext(connection) as queries:
        bulk_insert(Participant, people)
    assert inserts(queries) == 1
    assert all(p.pk and not p._state.adding for p in people)
    stored = {p.pk: p for p in Participant.objects.all()}
    assert set(stored) == {p.pk for p in people}
    for p in people:
        row = stored[p.pk]
        assert (row.email_id, row.role, row.address, row.name, row.match, row.candidates) == (
            p.email_id,
            p.role,
            p.address,
            p.name,
            p.match,
            p.candidates,
        )
        assert row.contact_id is None and row.user_id is None
    again = EmailMessage.objects.get(message_id="m1@x")
    assert again.subject == AWKWARD and again.text_body == AWKWARD * 200
    assert again.headers == [["Subject", AWKWARD], ["X-Empty", ""]]
    assert again.defects == ["NoBoundaryInMultipart"] and again.date == WHEN
    assert again.created is not None and again.updated is not None


def test_ignore_conflicts_skips_taken_rows_and_chunks_by_batch_size():
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    email = EmailMessage.objects.create(message_id="m@x", thread=thread, date=WHEN)
    MessageRef.objects.create(email=email, ref="r1")
    refs = [MessageRef(email=email, ref=f"r{i}") for i in range(5)]
    with CaptureQueriesContext(connection) as queries:
        bulk_insert(MessageRef, refs, ignore_conflicts=True, batch_size=2)
    assert inserts(queries) == 3
    assert sorted(MessageRef.objects.values_list("ref", flat=True)) == [
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
    ]


def test_an_expression_value_falls_back_to_bulk_create():
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    email = EmailMessage.objects.create(message_id="m@x", thread=thread, date=WHEN)
    refs = [MessageRef(email=email, ref=Value("computed")), MessageRef(email=email, ref="plain")]
    bulk_insert(MessageRef, refs)
    assert sorted(MessageRef.objects.values_list("ref", flat=True)) == ["computed", "plain"]


def test_nothing_to_insert_is_no_query():
    with CaptureQueriesContext(connection) as queries:
        bulk_insert(Participant, [])
    assert len(queries) == 0
