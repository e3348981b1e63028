"""The indexes of the tables every captured message writes (capture/migrations/0005 and 0006,
governance/migrations/0004): no varchar_pattern_ops "_like" index nothing queries with LIKE, no
index that only repeats the leading column of another, the ones the lookups need are there,
and the raw table's partial indexes still serve their lookups."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

#: Tables written per captured message (capture/pipeline.py, core/db/bulk.py).
PER_MESSAGE_TABLES = (
    "capture_rawmessage",
    "capture_emailmessage",
    "capture_participant",
    "capture_capture",
    "capture_messageref",
    "capture_attachment",
    "capture_blob",
    "capture_meeting",
    "capture_thread",
    "capture_threadlink",
    "governance_auditevent",
)

#: "_like" indexes a query needs (capture/demo.py's idempotency_key__startswith runs once, when
#: demo data is seeded: it needs none).
NEEDED_LIKE: set = set()

#: The lookups the pipeline, the sweeper, the API and the cascades run: (table, name, columns,
#: unique).
NEEDED = [
    ("capture_emailmessage", "cap_email_message_id_unique", ["message_id"], True),
    ("capture_emailmessage", "cap_email_thread_date", ["thread_id", "date"], False),
    ("capture_messageref", "cap_messageref_ref", ["ref"], False),
    ("capture_messageref", "cap_messageref_unique", ["email_id", "ref"], True),
    ("capture_participant", "cap_participant_address", ["address"], False),
    ("capture_participant", "cap_participant_match_addr", ["match", "address"], False),
    ("capture_rawmessage", "cap_raw_sha256", ["sha256"], False),
    ("capture_rawmessage", "cap_raw_status_unsettled", ["status", "updated"], False),
    ("capture_rawmessage", "cap_raw_idempotency_unique", ["idempotency_key"], True),
    ("capture_rawmessage", "cap_raw_email", ["email_id"], False),
    ("capture_rawmessage", "cap_raw_mailbox", ["mailbox_id"], False),
    ("capture_rawmessage", "cap_raw_capture_address", ["capture_address_id"], False),
    ("capture_rawmessage", "cap_raw_channel_received", ["channel", "received_at"], False),
    ("capture_blob", "cap_blob_sha256_unique", ["sha256"], True),
    ("capture_threadlink", "cap_threadlink_contact", ["thread_id", "contact_id"], True),
    ("governance_auditevent", "gov_audit_action", ["action"], False),
    ("governance_auditevent", "gov_audit_object", ["object_type", "object_id"], False),
]

#: Dropped by the migrations (the names Django gave them).
DROPPED = [
    "capture_emailmessage_message_id_cebd4af3_like",
    "capture_emailmessage_from_address_e786caa8",
    "capture_emailmessage_from_address_e786caa8_like",
    "capture_emailmessage_thread_id_7c6fff8c",
    "capture_emailmessage_expires_at_570fb2f9",
    "capture_messageref_email_id_d258a3d0",
    "capture_messageref_ref_619f096f_like",
    "capture_participant_address_71e1355d_like",
    "capture_rawmessage_sha256_a777201c_like",
    "capture_blob_sha256_4bccc87e_like",
    "capture_meeting_uid_7654a394",
    "capture_meeting_uid_7654a394_like",
    "capture_threadlink_thread_id_24be49d6",
    "governance_auditevent_action_9925d39d_like",
    "cap_raw_status_updated",
    "capture_rawmessage_idempotency_key_key",
    "capture_rawmessage_idempotency_key_32600170_like",
    "capture_rawmessage_email_id_c7f41da4",
    "capture_rawmessage_mailbox_id_899f25c5",
    "capture_rawmessage_capture_address_id_8c25ec08",
]


def _indexes() -> dict[str, dict]:
    """Index name -> table, columns (in order), unique, partial, opclasses."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname, x.indisunique, x.indpred IS NOT NULL,
                   array_agg(a.attname ORDER BY k.n), array_agg(o.opcname ORDER BY k.n)
            FROM pg_index x
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            CROSS JOIN LATERAL unnest(x.indkey, x.indclass) WITH ORDINALITY AS k(attnum, opc, n)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            JOIN pg_opclass o ON o.oid = k.opc
            WHERE t.relname = ANY(%s)
            GROUP BY t.relname, i.relname, x.indisunique, x.indpred
            """,
            [list(PER_MESSAGE_TABLES)],
        )
        return {
            name: {
                "table": table,
                "columns": list(columns),
                "unique": unique,
                "partial": partial,
                "opclasses": list(opclasses),
            }
            for table, name, unique, partial, columns, opclasses in cursor.fetchall()
        }


def test_dropped_indexes_are_gone():
    indexes = _indexes()
    assert [name for name in DROPPED if name in indexes] == []


def test_no_pattern_ops_index_nothing_queries_with_like():
    like = {
        (ix["table"], ix["columns"][0])
        for ix in _indexes().values()
        if any(op.endswith("_pattern_ops") for op in ix["opclasses"])
    }
    assert like == NEEDED_LIKE


def test_no_index_repeats_the_leading_columns_of_another():
    indexes = _indexes()
    redundant = [
        (name, other)
        for name, ix in indexes.items()
        if not ix["unique"] and not ix["partial"]
        for other, big in indexes.items()
        if other != name
        and big["table"] == ix["table"]
        and not big["partial"]
        and len(big["columns"]) > len(ix["columns"])
        and big["columns"][: len(ix["columns"])] == ix["columns"]
    ]
    assert redundant == []


def test_the_lookups_indexes_are_there():
    indexes = _indexes()
    missing = [
        (table, name)
        for table, name, columns, unique in NEEDED
        if name not in indexes
        or indexes[name]["table"] != table
        or indexes[name]["columns"] != columns
        or indexes[name]["unique"] != unique
        or any(op.endswith("_pattern_ops") for op in indexes[name]["opclasses"])
    ]
    assert missing == []


def test_message_id_and_blob_sha256_stay_unique_constraints():
    """insert_skipping_conflicts (ON CONFLICT DO NOTHING) relies on them, as dedupe does."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'u' AND conname = ANY(%s)",
            [["cap_email_message_id_unique", "cap_blob_sha256_unique"]],
        )
        assert sorted(r[0] for r in cursor.fetchall()) == [
            "cap_blob_sha256_unique",
            "cap_email_message_id_unique",
        ]


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("status = 'pending' AND updated < now()", "cap_raw_status_unsettled"),
        ("status = 'failed'", "cap_raw_status_unsettled"),
        ("status IN ('rejected', 'failed')", "cap_raw_status_unsettled"),
        ("idempotency_key = 'k'", "cap_raw_idempotency_unique"),
        ("idempotency_key IN ('k', 'l')", "cap_raw_idempotency_unique"),
        ("email_id = 1", "cap_raw_email"),
        ("mailbox_id = 1", "cap_raw_mailbox"),
        ("capture_address_id IN (1, 2)", "cap_raw_capture_address"),
    ],
)
def test_the_raw_tables_partial_indexes_serve_the_lookups(where, index):
    """Their conditions (set, not processed) are implied by the lookups, so the planner may
    use them (sequential scans off: the test table is empty)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN SELECT id FROM capture_rawmessage WHERE {where}")  # noqa: S608
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
