"""core.db.bulk.insert_skipping_conflicts: one INSERT for a batch; rows whose key is taken are
skipped and reported, the others get their primary keys (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from capture.models import EmailMessage, Participant, Thread
from core.db.bulk import insert_skipping_conflicts

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def email(thread: Thread, mid: str) -> EmailMessage:
    return EmailMessage(message_id=mid, thread=thread, date=WHEN, subject=mid)


def test_winners_get_their_pk_and_taken_keys_are_reported_untouched():
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    taken = EmailMessage.objects.create(message_id="b@x", thread=thread, date=WHEN, subject="old")
    batch = [email(thread, "c@x"), email(thread, "b@x"), email(thread, "a@x")]

    with CaptureQueriesContext(connection) as queries:
        lost = insert_skipping_conflicts(EmailMessage, batch, "message_id")

    assert lost == {"b@x"}
    assert len([q for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]) == 1
    by_mid = {e.message_id: e for e in batch}
    assert by_mid["b@x"].pk is None and by_mid["b@x"]._state.adding
    assert EmailMessage.objects.get(message_id="b@x").subject == "old"
    assert EmailMessage.objects.get(message_id="b@x").pk == taken.pk
    for mid in ("a@x", "c@x"):
        assert by_mid[mid].pk == EmailMessage.objects.get(message_id=mid).pk
        assert not by_mid[mid]._state.adding
    # rows created after the insert can point at the winners by object
    Participant.objects.bulk_create(
        [Participant(email=by_mid["a@x"], address="someone@example.com", role="to")]
    )
    assert Participant.objects.get().email_id == by_mid["a@x"].pk


def test_nothing_to_insert_is_no_query():
    with CaptureQueriesContext(connection) as queries:
        assert insert_skipping_conflicts(EmailMessage, [], "message_id") == set()
    assert len(queries) == 0
