"""governance.bulk._columns takes plain str/int/bool values as they are and leaves everything
else to Django's pre_save/get_db_prep_save: it must give exactly what Django's path gives
(_columns_reference), on awkward hand-made rows and on every row the pipeline inserts for
generated mail."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import connection
from django.db.models import AutoField, Value
from django.utils import timezone

from capture.demo import generate_demo_messages
from capture.ingest import RawSpec, store_raw_messages
from capture.models import EmailMessage, MessageRef, Participant, RawMessage, Thread
from capture.pipeline import ingest_raw_messages
from governance import bulk
from governance.audit import build_event
from governance.models import AuditEvent, OrgSettings
from tests.factories import make_user, set_org_settings

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def fields_of(model):
    return [
        f for f in model._meta.concrete_fields if not f.generated and not isinstance(f, AutoField)
    ]


def both(columns, objs, fields, conn):
    """`columns` and Django's path on the same rows, at one frozen instant (auto_now)."""
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now):
        return columns(objs, fields, conn), bulk._columns_reference(objs, fields, conn)


def normal(column: list) -> list:
    """Each value with its exact type; a JSON wrapper (psycopg's Jsonb) by what it wraps."""
    return [(type(v), v.obj if hasattr(v, "dumps") and hasattr(v, "obj") else v) for v in column]


def same(objs) -> None:
    model = type(objs[0])
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
    fields = fields_of(model)
    fast, slow = both(bulk._columns, objs, fields, connection)
    assert len(fast) == len(slow)
    for f, a, b in zip(fields, fast, slow, strict=True):
        assert normal(a) == normal(b), f.name


def test_awkward_values_match_djangos_path():
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    emails = [
        EmailMessage(
            message_id="m@x",
            thread=thread,
            date=WHEN,
            kind=EmailMessage.Kind.MEETING,  # a TextChoices member, not a plain str
            stored=EmailMessage.Stored.FULL,
            size=True,  # a bool in an integer field: Django stores 1
            has_attachments=1,  # an int in a boolean field
            subject=None,
            from_name=42,  # an int in a text field: Django stores "42"
        ),
        EmailMessage(message_id="n@x", thread_id=thread.pk, date=WHEN, size=2**40),
    ]
    same(emails)
    same([MessageRef(email_id=123, ref="r"), MessageRef(email_id=None, ref="")])
    same(
        [
            build_event("x.y", actor="worker:test", object_id=5, detail={"a": [1, "b"]}),
            build_event("x.z", actor=None, channel="admin"),
        ]
    )


def test_expressions_still_fall_back():
    with pytest.raises(bulk._NotPlain):
        bulk._columns([MessageRef(email_id=1, ref=Value("x"))], fields_of(MessageRef), connection)


def test_every_row_the_pipeline_inserts_matches(monkeypatch):
    set_org_settings(
        auto_create_contacts=OrgSettings.AutoCreate.ALWAYS,
        internal_domains=["mailwarden-demo.com"],
    )
    make_user(email="alice@mailwarden-demo.com")
    checked: dict[str, int] = {}
    real = bulk._columns

    def checking(objs, fields, conn):
        out, expected = both(real, objs, fields, conn)
        assert [normal(c) for c in out] == [normal(c) for c in expected]
        name = type(objs[0]).__name__
        checked[name] = checked.get(name, 0) + len(objs)
        return out

    monkeypatch.setattr(bulk, "_columns", checking)
    mail = generate_demo_messages(
        n=40,
        seed=3,
        internal=[("Alice Archer", "alice@mailwarden-demo.com")],
        customers=[("Tom Buyer", "tom.buyer@globex.co.uk"), ("Eve Ng", "eve@initech.com")],
        start=WHEN,
    )
    raws = store_raw_messages(
        [RawSpec(data=m.data, channel=RawMessage.Channel.API) for m in mail], enqueue=False
    )
    outcomes = ingest_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {"processed"}
    # The stored rows, copied into unsaved objects, compare on any backend too.
    for model in (EmailMessage, Participant, AuditEvent):
        rows = list(model.objects.order_by("pk")[:20])
        assert rows
        same([model(**{f.attname: getattr(r, f.attname) for f in fields_of(model)}) for r in rows])
    if connection.vendor == "postgresql":
        assert {"EmailMessage", "Participant", "Capture", "MessageRef"} <= set(checked)
