"""core.db.bulk._columns takes plain str/int/bool values, None, aware datetimes, dates, JSON
dicts and lists, TextChoices members and auto_now timestamps directly and leaves everything
else to Django's pre_save/get_db_prep_save: it must give exactly what Django's path gives
(_columns_reference), on awkward hand-made rows and on every row the pipeline inserts for
generated mail."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta
from datetime import timezone as dt_timezone
from types import SimpleNamespace
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, models
from django.db.models import AutoField, Value
from django.utils import timezone

from capture.models import EmailMessage, MessageRef, Participant, Thread
from core.db import bulk
from governance.audit import build_event
from governance.models import AuditEvent, OrgSettings
from tests.capture.pipeline.helpers import ingest_generated_mail
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
    """Each value with its exact type; a JSON wrapper (psycopg's Jsonb) by what it wraps and
    the dumps function it is dumped with."""
    return [
        (type(v), (v.obj, v.dumps) if hasattr(v, "dumps") and hasattr(v, "obj") else v)
        for v in column
    ]


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
    ingest_generated_mail(
        seed=3,
        customers=[("Tom Buyer", "tom.buyer@globex.co.uk"), ("Eve Ng", "eve@initech.com")],
    )
    # The stored rows, copied into unsaved objects, compare on any backend too.
    for model in (EmailMessage, Participant, AuditEvent):
        rows = list(model.objects.order_by("pk")[:20])
        assert rows
        same([model(**{f.attname: getattr(r, f.attname) for f in fields_of(model)}) for r in rows])
    if connection.vendor == "postgresql":
        assert {"EmailMessage", "Participant", "Capture", "MessageRef"} <= set(checked)


class Later(datetime):
    """A datetime subclass (as freezegun's): Django's path, not the fast one."""


def test_datetimes_none_json_and_choices_match_djangos_path():
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    paris = datetime(2026, 3, 2, 11, 0, tzinfo=ZoneInfo("Europe/Paris"))
    emails = [
        EmailMessage(
            message_id="a@x",
            thread=thread,
            date=paris,  # aware, not UTC
            expires_at=None,
            references=["<r@x>"],
            headers=[["Subject", "s"]],
            categories={"a": {"b": [1, 2.5, None, True]}},  # a dict in a JSON column
            direction=EmailMessage.Direction.INBOUND,
        ),
        EmailMessage(
            message_id="b@x",
            thread_id=thread.pk,
            date=datetime(2026, 3, 2, 10, 0, tzinfo=dt_timezone(timedelta(hours=-5))),
            expires_at=Later(2026, 4, 1, tzinfo=UTC),
            references="a JSON string",  # a JSON scalar: Django's path
            headers=None,  # SQL NULL
            defects=(),  # a tuple: Django's path (JSON array)
            gate_reasons=[],
        ),
    ]
    same(emails)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # naive datetime: Django warns
        same(
            [
                EmailMessage(message_id="c@x", thread=thread, date=datetime(2026, 3, 2, 10, 0)),
                EmailMessage(message_id="d@x", thread=thread, date=WHEN, expires_at=WHEN),
            ]
        )


def test_auto_now_sets_each_object_as_pre_save_does():
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    fields = fields_of(EmailMessage)
    ours = [
        EmailMessage(message_id=f"m{i}@x", thread=thread, date=WHEN, created=WHEN) for i in range(3)
    ]
    theirs = [
        EmailMessage(message_id=f"m{i}@x", thread=thread, date=WHEN, created=WHEN) for i in range(3)
    ]
    at = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with mock.patch("django.utils.timezone.now", return_value=at):
        fast = bulk._columns(ours, fields, connection)
        slow = bulk._columns_reference(theirs, fields, connection)
    assert [normal(c) for c in fast] == [normal(c) for c in slow]
    assert [o.updated for o in ours] == [o.updated for o in theirs] == [at] * 3
    # A naive now (USE_TZ off, or a mock): Django's path for every row.
    naive = datetime(2026, 5, 1, 12, 0)
    with (
        mock.patch("django.utils.timezone.now", return_value=naive),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", RuntimeWarning)
        fast = bulk._columns(ours, fields, connection)
        slow = bulk._columns_reference(theirs, fields, connection)
    assert [normal(c) for c in fast] == [normal(c) for c in slow]
    assert {o.updated for o in ours} == {naive}


def test_unbound_date_and_datetime_fields_match_djangos_path():
    day = models.DateField(null=True)
    day.set_attributes_from_name("day")
    today = models.DateField(auto_now=True)
    today.set_attributes_from_name("today")
    stamp = models.DateTimeField(auto_now_add=True)
    stamp.set_attributes_from_name("stamp")
    fields = [day, today, stamp]

    def rows():
        return [
            SimpleNamespace(day=date(2026, 3, 2), today=None, stamp=None),
            SimpleNamespace(day=None, today=None, stamp=None),
            SimpleNamespace(day=WHEN, today=None, stamp=None),  # a datetime in a DateField
        ]

    ours, theirs = rows(), rows()
    with mock.patch("django.utils.timezone.now", return_value=WHEN):
        fast = bulk._columns(ours, fields, connection)
        slow = bulk._columns_reference(theirs, fields, connection)
    assert [normal(c) for c in fast] == [normal(c) for c in slow]
    assert [vars(o) for o in ours] == [vars(o) for o in theirs]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast paths are PostgreSQL's")
def test_fast_paths_are_taken_on_postgresql(monkeypatch):
    """Only the unusual values reach Django's per-field methods (else the tests above would
    compare Django's path with itself)."""
    thread = Thread.objects.create(subject="s", first_at=WHEN, last_at=WHEN)
    emails = [
        EmailMessage(
            message_id="a@x",
            thread=thread,
            date=WHEN,
            created=WHEN,
            expires_at=None,
            references=["<r@x>"],
            categories={"a": 1},
            kind=EmailMessage.Kind.MEETING,
        ),
        EmailMessage(
            message_id="b@x",
            thread=thread,
            date=datetime(2026, 3, 2, 10, 0),  # naive
            created=WHEN,
            expires_at=Later(2026, 4, 1, tzinfo=UTC),
            references="a JSON string",
        ),
    ]
    slow = []
    real = bulk._db_value

    def counting(obj, f, conn):
        slow.append((obj.message_id, f.name))
        return real(obj, f, conn)

    monkeypatch.setattr(bulk, "_db_value", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bulk._columns(emails, fields_of(EmailMessage), connection)
    # text_body, html_body and headers are capture.bodycrypt's fields (encrypted while
    # MAILWARDEN_ENCRYPT_BODIES is on): always Django's path, by design.
    sealed = [(m, f) for m in ("a@x", "b@x") for f in ("headers", "html_body", "text_body")]
    assert sorted(slow) == sorted(
        [("b@x", "date"), ("b@x", "expires_at"), ("b@x", "references"), *sealed]
    )
