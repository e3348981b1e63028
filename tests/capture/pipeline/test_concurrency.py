"""Two workers at the same time (PostgreSQL, real transactions and row locks): the same
Message-ID in both batches is one message with two captures; the same new address is one
contact. A barrier inside OUR pipeline makes both workers load their batch before either
writes, so the race is forced rather than hoped for."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from capture import pipeline
from capture.models import Capture, EmailMessage, RawMessage, Thread
from capture.pipeline import process_raw_messages
from crm.models import Contact, ContactEmail
from governance.models import OrgSettings
from tests.capture.pipeline.helpers import fixture_bytes, make_mail, store
from tests.factories import make_user, set_org_settings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = RawMessage.Status


def both_load_before_either_writes(monkeypatch, workers: int = 2) -> None:
    """Hold each worker at its first message's direction step (after the batch's lookups,
    before any row is written) until every worker got there; once per thread."""
    barrier = threading.Barrier(workers, timeout=20)
    seen: set[int] = set()
    real = pipeline.derive_direction

    def derive(ctx, parsed):
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            barrier.wait()
        return real(ctx, parsed)

    monkeypatch.setattr(pipeline, "derive_direction", derive)


def run_workers(batches: list[list[int]]) -> list:
    results: list = [None] * len(batches)
    errors: list[BaseException] = []

    def work(i: int, ids: list[int]) -> Callable[[], None]:
        def run() -> None:
            try:
                results[i] = process_raw_messages(ids)
            except BaseException as e:  # surfaced in the main thread
                errors.append(e)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=work(i, ids)) for i, ids in enumerate(batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@pytest.fixture(autouse=True)
def policy_and_team():
    """The settings row and Sam exist before the workers start, as in production (creating the
    settings row would serialise the workers before the barrier)."""
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    return make_user(email="sam.seller@mailwarden-demo.com")


def test_two_workers_storing_the_same_message_id_make_one_message_and_two_captures(
    monkeypatch, caplog
):
    caplog.set_level("INFO", logger="capture.pipeline")
    data = fixture_bytes("multipart_alternative.eml")
    alice, bob = make_user(), make_user()
    a = store(data, RawMessage.Channel.SMTP, user_id=alice.pk)
    b = store(data, RawMessage.Channel.IMAP, user_id=bob.pk)
    other_a = store(fixture_bytes("base64_and_qp.eml"), user_id=alice.pk)
    other_b = store(fixture_bytes("calendar_invite.eml"), user_id=bob.pk)
    both_load_before_either_writes(monkeypatch)

    results = run_workers([[a.pk, other_a.pk], [b.pk, other_b.pk]])

    outcomes = {o.raw_id: o for batch in results for o in batch}
    assert {o.status for o in outcomes.values()} == {Status.PROCESSED}
    assert not RawMessage.objects.exclude(status=Status.PROCESSED).exists()
    email = EmailMessage.objects.get(message_id="CAF1a2b3c4d5e6@mail.acme-widgets.com")
    assert outcomes[a.pk].email_id == outcomes[b.pk].email_id == email.pk
    assert sorted([outcomes[a.pk].duplicate, outcomes[b.pk].duplicate]) == [False, True]
    assert set(Capture.objects.filter(email=email).values_list("user_id", flat=True)) == {
        alice.pk,
        bob.pk,
    }
    assert EmailMessage.objects.count() == 3
    assert email.participants.count() == 3
    # the losing worker leaves no empty thread behind: its whole batch was rolled back and redone
    assert Thread.objects.count() == 3
    assert len([r for r in caplog.records if "lost a Message-ID race" in r.getMessage()]) == 1
    assert not Thread.objects.filter(messages__isnull=True).exists()


def test_two_workers_auto_creating_the_same_new_address_make_one_contact(monkeypatch):
    first = store(make_mail(message_id="<new-a@globex.co.uk>", subject="Order A"))
    second = store(make_mail(message_id="<new-b@globex.co.uk>", subject="Order B"))
    both_load_before_either_writes(monkeypatch)

    run_workers([[first.pk], [second.pk]])

    assert set(RawMessage.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    assert ContactEmail.objects.filter(address="tom.buyer@globex.co.uk").count() == 1
    assert Contact.objects.count() == 1
    contact = Contact.objects.get()
    assert set(
        EmailMessage.objects.filter(participants__contact=contact).values_list(
            "message_id", flat=True
        )
    ) == {"new-a@globex.co.uk", "new-b@globex.co.uk"}


def test_two_workers_creating_two_new_contacts_in_opposite_orders_both_succeed(monkeypatch):
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    tom, anna = "tom.buyer@globex.co.uk", "anna.lee@initech.de"
    first = store(make_mail(message_id="<x-1@globex.co.uk>", from_=tom, to=anna, subject="One"))
    second = store(make_mail(message_id="<x-2@initech.de>", from_=anna, to=tom, subject="Two"))
    both_load_before_either_writes(monkeypatch)

    run_workers([[first.pk], [second.pk]])

    failed = RawMessage.objects.filter(status=Status.FAILED).values_list("reason_detail", flat=True)
    assert list(failed) == []
    assert set(RawMessage.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    assert ContactEmail.objects.filter(address=tom).count() == 1
    assert ContactEmail.objects.filter(address=anna).count() == 1


def hold_first_worker(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """The worker thread named "first" pauses mid-batch (its raw row locked, nothing
    committed): `paused` says it got there, `release` lets it go on."""
    paused, release = threading.Event(), threading.Event()
    real = pipeline.derive_direction

    def derive(ctx, parsed):
        if threading.current_thread().name == "first":
            paused.set()
            assert release.wait(20), "the first worker was never released"
        return real(ctx, parsed)

    monkeypatch.setattr(pipeline, "derive_direction", derive)
    return paused, release


def start(name: str, fn: Callable[[], object], results: dict) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = fn()
        except BaseException as e:  # surfaced in the main thread
            results[name] = e
        finally:
            connection.close()

    t = threading.Thread(target=run, name=name)
    t.start()
    return t


def test_a_second_worker_skips_a_raw_message_another_worker_holds_and_it_is_processed_once(
    monkeypatch,
):
    raw = store(fixture_bytes("multipart_alternative.eml"))
    paused, release = hold_first_worker(monkeypatch)
    results: dict = {}
    first = start("first", lambda: process_raw_messages([raw.pk]), results)
    assert paused.wait(20)

    def duplicate_queue_message():
        try:  # must neither wait for nor redo the first worker's work
            return process_raw_messages([raw.pk])
        finally:
            release.set()

    second = start("second", duplicate_queue_message, results)
    second.join(30)
    first.join(30)
    assert results["second"] == []
    assert [o.status for o in results["first"]] == [Status.PROCESSED]
    raw.refresh_from_db()
    assert (raw.status, raw.attempts) == (Status.PROCESSED, 1)
    assert Capture.objects.count() == 1


def test_processing_one_raw_message_held_by_another_worker_reports_that_workers_outcome(
    monkeypatch,
):
    raw = store(fixture_bytes("multipart_alternative.eml"))
    paused, release = hold_first_worker(monkeypatch)
    results: dict = {}
    first = start("first", lambda: process_raw_messages([raw.pk]), results)
    assert paused.wait(20)
    real_batch = pipeline.process_raw_messages

    def batch(ids):
        try:
            return real_batch(ids)
        finally:
            if threading.current_thread().name == "second":
                release.set()  # the row was skipped: now let the holder finish

    monkeypatch.setattr(pipeline, "process_raw_messages", batch)
    second = start("second", lambda: pipeline.process_raw_message(raw.pk), results)
    second.join(30)
    first.join(30)
    assert not isinstance(results["second"], BaseException), repr(results["second"])
    outcome = results["second"]
    assert (outcome.status, outcome.raw_id) == (Status.PROCESSED, raw.pk)
    assert outcome.email_id == results["first"][0].email_id
    assert Capture.objects.count() == 1
