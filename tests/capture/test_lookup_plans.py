"""The batch lookups whose tables grow with all stored mail stay index lookups, with the
tables' statistics missing (no autovacuum run yet) as with them: the subject-threading
participant overlap (capture/threads.py) and the replies pointing at a batch's Message-IDs
(capture/context.py). Written as plain joins, the planner hash-joined sequential scans of
capture_participant / capture_messageref and capture_emailmessage, a cost per batch that
grew with every stored message."""

from __future__ import annotations

import pytest
from django.db import connection

from capture.context import CHILD_REFS_PG
from capture.models import EmailMessage, Participant
from capture.threads import STORED_OVERLAP_PG
from core.db.bulk import execute_binary
from tests.capture.pipeline.helpers import ingest_generated_mail

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

COPIES = 150


def _columns(model, *skip: str) -> list[str]:
    q = connection.ops.quote_name
    return [q(f.column) for f in model._meta.concrete_fields if f.column not in ("id", *skip)]


@pytest.fixture
def stored_mail():
    """~5,000 stored emails with their participants and unresolved references, unanalyzed."""
    ingest_generated_mail(seed=5, customers=[("Tom Buyer", "tom.buyer@globex.co.uk")])
    email_cols = _columns(EmailMessage)
    picked = ["message_id || '.' || g" if c == '"message_id"' else c for c in email_cols]
    part_cols = _columns(Participant, "email_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO capture_emailmessage ({', '.join(email_cols)})"  # noqa: S608
            f" SELECT {', '.join(picked)} FROM capture_emailmessage,"
            f" generate_series(1, {COPIES}) AS g"
        )
        cursor.execute(
            f"INSERT INTO capture_participant (email_id, {', '.join(part_cols)})"  # noqa: S608
            f" SELECT n.id, {', '.join('p.' + c for c in part_cols)}"
            " FROM capture_participant p JOIN capture_emailmessage o ON o.id = p.email_id"
            " JOIN capture_emailmessage n ON n.message_id LIKE o.message_id || '.%%'"
        )
        cursor.execute(
            "INSERT INTO capture_messageref (email_id, ref)"
            " SELECT id, 'parent-' || (id % 2000) || '@example.com' FROM capture_emailmessage"
        )
        cursor.execute("SELECT count(*) FROM capture_participant")
        assert cursor.fetchone()[0] > 5_000
        cursor.execute("SELECT array_agg(id) FROM (SELECT id FROM capture_thread LIMIT 40) t")
        threads = cursor.fetchone()[0]
        cursor.execute("SELECT array_agg(DISTINCT address) FROM capture_participant")
        addresses = cursor.fetchone()[0]
        cursor.execute("SELECT array_agg(message_id) FROM capture_emailmessage WHERE id % 20 = 0")
        mids = cursor.fetchone()[0] + [f"parent-{i}@example.com" for i in range(0, 300, 3)]
    return threads, addresses, mids


def plan(sql: str, params) -> str:
    return "\n".join(row[0] for row in execute_binary("EXPLAIN " + sql, params, fetch=True))


@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
def test_the_growing_tables_are_read_through_their_indexes(stored_mail, analyzed):
    threads, addresses, mids = stored_mail
    if analyzed:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE capture_emailmessage, capture_participant, capture_messageref")
    overlap = plan(STORED_OVERLAP_PG, [threads, addresses])
    refs = plan(CHILD_REFS_PG, [mids])
    for text in (overlap, refs):
        assert "Seq Scan on capture_" not in text, text
    assert "capture_participant_email_id" in overlap, overlap
    assert "cap_messageref_ref" in refs, refs
    # and they answer what they answered as plain joins
    assert sorted(execute_binary(STORED_OVERLAP_PG, [threads, addresses], fetch=True)) == sorted(
        execute_binary(
            "SELECT e.thread_id, p.address, count(*) FROM capture_participant p"
            " JOIN capture_emailmessage e ON e.id = p.email_id"
            " WHERE e.thread_id = ANY(%b::bigint[]) AND p.address = ANY(%b::text[])"
            " GROUP BY e.thread_id, p.address",
            [threads, addresses],
            fetch=True,
        )
    )
    joined = execute_binary(
        "SELECT r.ref, e.thread_id FROM capture_messageref r"
        " JOIN capture_emailmessage e ON e.id = r.email_id WHERE r.ref = ANY(%b::text[])",
        [mids],
        fetch=True,
    )
    assert joined
    assert sorted(execute_binary(CHILD_REFS_PG, [mids], fetch=True)) == sorted(joined)
