"""core.db.bulk.new_row builds the same unsaved instance as `Model(**values)`: the same
attribute values, the same cached related objects, the same state, for the rows the pipeline
builds (hand-made values and every row generated mail produces), and falls back to the model's
own constructor where its shortcut does not apply."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.utils import timezone

from capture.models import (
    Attachment,
    Blob,
    Capture,
    EmailMessage,
    Meeting,
    MeetingMessage,
    MessageRef,
    Participant,
    RawMessage,
    Thread,
    ThreadLink,
)
from core.db import bulk
from crm.models import Contact
from governance.models import AuditEvent
from tests.capture.pipeline.helpers import ingest_generated_mail
from tests.factories import make_user

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def state(obj) -> dict:
    values = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    for field in obj._meta.concrete_fields:
        if field.default is timezone.now:  # called for each row: see same()
            values[field.attname] = "now"
    return {
        "values": values,
        "cache": dict(obj._state.fields_cache),
        "adding": obj._state.adding,
        "db": obj._state.db,
    }


def same(fast, slow) -> None:
    assert type(fast) is type(slow)
    assert state(fast) == state(slow)
    for field in slow._meta.concrete_fields:
        if field.default is timezone.now:
            f, s = getattr(fast, field.attname), getattr(slow, field.attname)
            assert abs(f - s).total_seconds() < 5


def assert_same(model, **values) -> None:
    same(bulk.new_row(model, **values), model(**values))


def test_plain_values_defaults_and_foreign_keys_by_id_or_instance():
    email = EmailMessage(message_id="a@example.com", date=WHEN)
    assert_same(EmailMessage, message_id="a@example.com", date=WHEN, subject="Hi")
    assert_same(Participant, email=email, role="to", address="x@example.com", name="X")
    assert_same(Participant, email_id=7, role="cc", address="y@example.com", contact_id=3)
    assert_same(MessageRef, email=email, ref="parent@example.com")
    assert_same(ThreadLink, thread_id=5, contact_id=9, source="participant", email=email)
    assert_same(Attachment, email=email, blob=None, filename="a.pdf", size=3, sha256="ab")
    assert_same(AuditEvent, action="email.captured", detail={"raw": 1}, object_id="4")


def test_callable_defaults_are_fresh_for_every_row():
    first, second = bulk.new_row(EmailMessage), bulk.new_row(EmailMessage)
    assert first.references == [] and first.references is not second.references
    assert first.defects is not second.defects


def test_an_unsaved_related_object_gives_its_pk_once_saved():
    thread = Thread.objects.create(subject="s")
    email = bulk.new_row(EmailMessage, message_id="b@example.com", date=WHEN, thread=thread)
    p = bulk.new_row(Participant, email=email, role="from", address="z@example.com")
    assert p.email_id is None and p.email is email
    email.save()
    p.save()
    assert Participant.objects.get().email_id == email.pk


def test_a_related_object_of_the_wrong_model_is_refused_as_by_the_constructor():
    with pytest.raises(ValueError):
        Participant(email=Thread(subject="s"))
    with pytest.raises(ValueError):
        bulk.new_row(Participant, email=Thread(subject="s"))


def test_unknown_names_take_the_models_constructor():
    with pytest.raises(TypeError):
        bulk.new_row(Participant, nonsense=1)


def test_a_one_to_one_instance_also_caches_the_reverse_side():
    raw = RawMessage(sha256="c" * 64, size=1, channel="api", storage_path="x")
    fast = bulk.new_row(Capture, raw=raw, user_id=None, channel="api", captured_at=WHEN)
    assert raw.capture is fast
    slow = Capture(raw=raw, user_id=None, channel="api", captured_at=WHEN)
    assert raw.capture is slow
    same(fast, slow)
    assert_same(Meeting, uid="u", summary="m")
    assert_same(MeetingMessage, meeting=None, email=None, method="REQUEST")


def test_a_stored_related_object_gives_its_id_and_database():
    user = make_user()
    thread = Thread.objects.create(subject="s")
    assert_same(Thread, subject="t", owner=user)
    assert_same(EmailMessage, message_id="d@example.com", date=WHEN, thread=thread)
    assert bulk.new_row(Thread, owner=user).owner_id == user.pk
    assert bulk.new_row(Thread, owner=user)._state.db == "default"


def test_every_row_the_pipeline_builds_for_generated_mail_equals_the_constructors(monkeypatch):
    user = make_user(email="alice@mailwarden-demo.com")
    built: list = []
    real = bulk.new_row

    def spy(model, **values):
        built.append((model, values))
        return real(model, **values)

    for module in (
        "capture.intake",
        "capture.pipeline",
        "capture.participants",
        "capture.linking",
        "capture.store",
        "capture.threads",
    ):
        monkeypatch.setattr(f"{module}.new_row", spy)
    monkeypatch.setattr("governance.audit.new_row", spy)
    Contact.objects.create(first_name="C")
    ingest_generated_mail(
        seed=5,
        customers=[("Tom Buyer", "tom@globex.example"), ("Ann Lee", "ann@initech.example")],
        channel=RawMessage.Channel.IMPORT,
        user_id=user.pk,
    )
    models = {model for model, _ in built}
    assert {
        RawMessage,
        EmailMessage,
        Participant,
        MessageRef,
        Capture,
        ThreadLink,
        AuditEvent,
        Blob,
    } <= models
    if connection.vendor == "postgresql":  # elsewhere new_thread inserts at once (create)
        assert Thread in models
    for model, values in built:
        # the same values again: instances given as values are shared, as they were
        same(real(model, **values), model(**values))
