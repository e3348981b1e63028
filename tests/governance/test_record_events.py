"""governance.audit.record_events inserts a batch of events in one statement (binary arrays
on PostgreSQL, core/db/bulk.py): the rows must be exactly what Django's bulk_create stores
for the same events, they get their keys, and they seal and verify like any other event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.audit import Actor, build_event, record_events, seal_pending_events, verify_chain
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db

AWKWARD = 'a "quoted", {braced} \\ back\\slashed NULL\ttabbed\nline ünïcödé'
COMPARED = [
    f.attname for f in AuditEvent._meta.concrete_fields if f.attname not in ("id", "created")
]


def events(tag: str) -> list[AuditEvent]:
    when = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    out = [
        build_event(
            f"{tag}.captured",
            actor=Actor("worker", None, "pipeline"),
            object_type="capture.emailmessage",
            object_id=i,
            channel="api",
            detail={"raw": i, "duplicate": bool(i % 2), "stored": "full", "s": AWKWARD},
        )
        for i in range(5)
    ]
    out.append(build_event(f"{tag}.other", actor="worker:x", address=AWKWARD, detail={}))
    out.append(build_event(f"{tag}.nested", detail={"a": [1, None, {"b": [AWKWARD]}]}))
    for e in out:
        e.created = when
    return out


def stored(tag: str) -> list[tuple]:
    rows = AuditEvent.objects.filter(action__startswith=f"{tag}.").order_by("id")
    return [tuple(getattr(r, a) for a in COMPARED) for r in rows]


def test_rows_match_bulk_create_and_get_their_keys():
    AuditEvent.objects.bulk_create(events("django"))
    ours = events("ours")
    with CaptureQueriesContext(connection) as queries:
        record_events(ours)
    assert len([q for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]) == 1
    assert all(e.pk and not e._state.adding for e in ours)
    assert {e.pk for e in ours} == set(
        AuditEvent.objects.filter(action__startswith="ours.").values_list("pk", flat=True)
    )

    def untagged(rows):
        return [(r[0], r[1], r[2], r[3].split(".", 1)[1], *r[4:]) for r in rows]

    assert COMPARED.index("action") == 3
    assert untagged(stored("ours")) == untagged(stored("django"))
    assert seal_pending_events() == len(ours) * 2
    assert verify_chain().ok


def test_no_events_is_no_query():
    with CaptureQueriesContext(connection) as queries:
        record_events([])
    assert len(queries) == 0
