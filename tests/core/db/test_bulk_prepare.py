"""core.db.bulk.prepare_related_fields is Model._prepare_related_fields_for_save for a
batch, cheaper: the same attnames, caches (the row's and, for a one-to-one, the related
object's reverse cache), database states and errors, on hand-made rows and on every batch the
pipeline inserts for generated mail."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import connection

from capture.models import Capture, EmailMessage, Participant, RawMessage, Thread
from core.db import bulk
from governance.models import AuditEvent, OrgSettings
from tests.capture.pipeline.helpers import ingest_generated_mail
from tests.factories import make_user, set_org_settings

WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def djangos(objs) -> None:
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")


def state(objs, related) -> list:
    """What either way may change: each row's attnames, cache (by identity) and database, and
    each related object's reverse caches (by position among the rows) and database."""

    def ref(value):
        for i, o in enumerate(objs):
            if value is o:
                return ("row", i)
        for i, o in enumerate(related):
            if value is o:
                return ("related", i)
        return value

    rows = [
        (
            {f.attname: getattr(o, f.attname) for f in o._meta.concrete_fields},
            {k: ref(v) for k, v in o._state.fields_cache.items()},
            o._state.db,
        )
        for o in objs
    ]
    others = [({k: ref(v) for k, v in r._state.fields_cache.items()}, r._state.db) for r in related]
    return [rows, others]


def compare(build) -> object:
    """Run both on two copies of `build()`'s (rows, related objects): same state after, same
    error if any. Returns the error (or None)."""
    outcomes = []
    for prepare in (djangos, bulk.prepare_related_fields):
        objs, related = build()
        try:
            prepare(objs)
            error = None
        except ValueError as e:
            error = str(e)
        outcomes.append((error, state(objs, related)))
    assert outcomes[0] == outcomes[1]
    return outcomes[0][0]


def email(pk=None, **kw) -> EmailMessage:
    return EmailMessage(pk=pk, message_id=f"m{pk}@x", thread_id=1, date=WHEN, created=WHEN, **kw)


def test_pk_of_an_object_saved_after_the_assignment_is_copied():
    def build():
        e = email()
        people = [Participant(email=e, role="to", address=f"a{i}@x") for i in range(3)]
        e.pk = 41  # saved after the assignment (bulk-inserted)
        return people, [e]

    assert compare(build) is None
    people, (e,) = build()
    bulk.prepare_related_fields(people)
    assert [p.email_id for p in people] == [41] * 3
    assert all(p._state.fields_cache["email"] is e for p in people)


def test_one_to_one_sets_the_reverse_cache():
    def build():
        raw = RawMessage(size=1, channel="api")
        e = email(7)
        cap = Capture(email=e, raw=raw, channel="api", captured_at=WHEN)
        raw.pk = 9
        return [cap], [raw, e]

    assert compare(build) is None
    (cap,), (raw, _e) = build()
    bulk.prepare_related_fields([cap])
    assert cap.raw_id == 9 and raw._state.fields_cache["capture"] is cap


def test_cache_dropped_when_the_related_pk_changed():
    def build():
        e, f = email(5), email(6)
        people = [Participant(email=e, role="to", address="a@x")]
        people.append(Participant(email=f, role="cc", address="b@x"))
        e.pk = 8  # the related object's pk no longer what the row holds
        return people, [e, f]

    assert compare(build) is None
    people, _ = build()
    bulk.prepare_related_fields(people)
    assert people[0].email_id == 5 and "email" not in people[0]._state.fields_cache
    assert "email" in people[1]._state.fields_cache


def test_unsaved_related_object_raises_djangos_error():
    def build():
        saved, unsaved = email(3), email()
        people = [
            Participant(email=saved, role="to", address="a@x"),
            Participant(email=unsaved, role="cc", address="b@x"),
            Participant(email=unsaved, role="cc", address="c@x"),
        ]
        return people, [saved, unsaved]

    error = compare(build)
    assert error == (
        "bulk_create() prohibited to prevent data loss due to unsaved related object 'email'."
    )

    def build_one_to_one():
        raw = RawMessage(size=1, channel="api")
        return [Capture(email=email(2), raw=raw, channel="api", captured_at=WHEN)], [raw]

    # Django also drops the unsaved object's reverse cache (state compares it).
    assert "unsaved related object 'raw'" in compare(build_one_to_one)


def test_nothing_cached_none_cached_and_plain_ids():
    def build():
        e = email(4)
        rows = [
            Participant(email_id=4, role="to", address="a@x"),  # nothing cached
            Participant(email=e, role="to", address="b@x", contact=None),  # None cached
            Participant(email=e, role="to", address="c@x"),
        ]
        rows[2].email_id = 4  # through the attname: keeps the cache (same value)
        return rows, [e]

    assert compare(build) is None


def test_different_databases_refused_as_the_descriptor_does():
    def build():
        e = email()
        p = Participant(email=e, role="to", address="a@x")
        e.pk = 3
        e._state.db = "other"  # saved elsewhere after the assignment
        p._state.db = "default"
        return [p], [e]

    assert "router prevents this relation" in compare(build)


def test_models_it_does_not_replicate_take_djangos_method(monkeypatch):
    monkeypatch.setattr(bulk, "_prepare_specs", {})
    assert bulk._prepare_spec(Participant) is not bulk._SLOW
    people = [Participant(email=email(4), role="to", address="a@x")]
    # Database routers (the assignment asks them): Django's method.
    with (
        mock.patch.object(bulk.router, "routers", [object()]),
        mock.patch.object(Participant, "_prepare_related_fields_for_save", autospec=True) as m,
    ):
        bulk.prepare_related_fields(people)
    assert m.call_count == 1
    # A model overriding Django's method: its method, even with nothing cached.
    with mock.patch.object(
        Participant, "_prepare_related_fields_for_save", autospec=True
    ) as method:
        assert bulk._prepare_spec(Participant) is bulk._SLOW
        bulk.prepare_related_fields([Participant(email_id=4, role="to", address="a@x")])
    assert method.call_count == 1


@pytest.mark.django_db
def test_every_batch_the_pipeline_inserts_matches(monkeypatch):
    set_org_settings(
        auto_create_contacts=OrgSettings.AutoCreate.ALWAYS,
        internal_domains=["mailwarden-demo.com"],
    )
    make_user(email="alice@mailwarden-demo.com")
    checked: dict[str, int] = {}
    real = bulk.prepare_related_fields

    def checking(objs, operation_name="bulk_create"):
        # Django's method on copies first (a one-to-one's reverse cache then names the
        # copy: the real run below sets it back to the row), then the real run.
        copies = [copy.copy(o) for o in objs]
        djangos(copies)
        theirs = state(copies, [])
        real(objs, operation_name)
        assert state(objs, []) == theirs
        name = type(objs[0]).__name__
        checked[name] = checked.get(name, 0) + len(objs)

    monkeypatch.setattr(bulk, "prepare_related_fields", checking)
    ingest_generated_mail(
        seed=3,
        customers=[("Tom Buyer", "tom.buyer@globex.co.uk"), ("Eve Ng", "eve@initech.com")],
    )
    assert "EmailMessage" in set(checked)  # insert_skipping_conflicts, on any backend
    if connection.vendor == "postgresql":  # bulk_insert prepares on PostgreSQL only
        assert {"Capture", "Participant", "MessageRef", AuditEvent.__name__} <= set(checked)
    assert Thread.objects.exists()
