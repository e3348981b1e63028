"""Store raw, then process: exact bytes, content addressing, queueing on commit, idempotent
processing, the sweeper, failures with traceback, parking, and batch isolation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from capture import pipeline, storage
from capture.errors import MessageTooLarge
from capture.intake import RawSpec, store_raw_message
from capture.models import EmailMessage, RawMessage
from capture.operations import sweep_pending
from capture.pipeline import process_raw_message, process_raw_messages
from tests.capture.pipeline.helpers import (
    MAIL_DIR,
    capture,
    fixture_bytes,
    make_mail,
    store,
    table_counts,
)

pytestmark = pytest.mark.django_db

Status = RawMessage.Status


def fail_for_message_id(monkeypatch, message_id: str) -> None:
    """Inject a fault into one step of OUR pipeline for one Message-ID only."""
    real = pipeline.resolve_participants

    def resolve(ctx, work, direction):
        if work.parsed.message_id == message_id:
            raise RuntimeError("injected fault for the test")
        return real(ctx, work, direction)

    monkeypatch.setattr(pipeline, "resolve_participants", resolve)


def set_updated(raw: RawMessage, ago: timedelta) -> None:
    RawMessage.objects.filter(pk=raw.pk).update(updated=timezone.now() - ago)


# --- the raw store ----------------------------------------------------------------------------


def test_raw_bytes_are_stored_exactly_and_read_back_with_the_same_sha256():
    data = fixture_bytes("latin1_charset.eml")
    raw = store(data)
    back = storage.read_raw(raw.storage_path)
    assert back == data
    assert raw.sha256 == hashlib.sha256(data).hexdigest() == hashlib.sha256(back).hexdigest()
    assert raw.size == len(data)
    assert RawMessage.objects.get(pk=raw.pk).status == Status.PENDING


def test_two_identical_messages_share_one_stored_file(settings):
    data = fixture_bytes("multipart_alternative.eml")
    first = store(data, user_id=None)
    second = store(data, channel=RawMessage.Channel.IMAP)
    assert first.pk != second.pk
    assert first.storage_path == second.storage_path
    files = [p for p in settings.MAILWARDEN_RAW_STORAGE_DIR.rglob("*") if p.is_file()]
    assert len(files) == 1


def test_an_idempotency_key_already_stored_returns_the_same_row():
    first = store(fixture_bytes("dsn.eml"), idempotency_key="smtp:queue-id-1")
    again = store(fixture_bytes("draft.eml"), idempotency_key="smtp:queue-id-1")
    other = store(fixture_bytes("draft.eml"), idempotency_key="smtp:queue-id-2")
    assert again.pk == first.pk
    assert other.pk != first.pk
    assert RawMessage.objects.count() == 2


def test_a_message_over_the_size_limit_is_refused_before_anything_is_stored(settings):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 1000
    with pytest.raises(MessageTooLarge) as err:
        store(fixture_bytes("calendar_invite.eml"))
    assert err.value.code == "too_large"
    assert RawMessage.objects.count() == 0
    assert not settings.MAILWARDEN_RAW_STORAGE_DIR.exists() or not any(
        p.is_file() for p in settings.MAILWARDEN_RAW_STORAGE_DIR.rglob("*")
    )


def test_processing_is_queued_on_commit_and_not_before(django_capture_on_commit_callbacks):
    data = fixture_bytes("multipart_alternative.eml")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        raw = store_raw_message(RawSpec(data=data, channel=RawMessage.Channel.API))
        raw.refresh_from_db()
        assert raw.status == Status.PENDING
        assert EmailMessage.objects.count() == 0
    assert len(callbacks) == 1
    raw.refresh_from_db()
    assert raw.status == Status.PROCESSED
    assert raw.email.message_id == "CAF1a2b3c4d5e6@mail.acme-widgets.com"


def test_nothing_is_queued_when_the_storing_transaction_rolls_back(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            store_raw_message(
                RawSpec(data=fixture_bytes("dsn.eml"), channel=RawMessage.Channel.API)
            )
            raise RuntimeError("the channel failed before commit")
    assert callbacks == []
    assert RawMessage.objects.count() == 0
    assert EmailMessage.objects.count() == 0


# --- idempotent processing --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["calendar_invite.eml", "rfc2047_rfc2231.eml", "draft.eml"])
def test_processing_the_same_raw_message_twice_changes_nothing(name):
    raw, first = capture(fixture_bytes(name))
    before = table_counts()
    again = process_raw_message(raw.pk)
    also = process_raw_messages([raw.pk, raw.pk])
    assert table_counts() == before
    assert again == first
    assert also == [first]
    raw.refresh_from_db()
    assert raw.attempts == 1


# --- the sweeper ------------------------------------------------------------------------------


def test_the_sweeper_requeues_pending_rows_older_than_the_configured_age_only(settings):
    settings.MAILWARDEN_SWEEP_PENDING_AFTER_SECONDS = 300
    old = store(fixture_bytes("multipart_alternative.eml"))
    young = store(fixture_bytes("base64_and_qp.eml"))
    set_updated(old, timedelta(seconds=301))
    set_updated(young, timedelta(seconds=200))
    assert sweep_pending() == 1
    old.refresh_from_db()
    young.refresh_from_db()
    assert old.status == Status.PROCESSED
    assert young.status == Status.PENDING


def test_the_sweeper_retries_a_failed_row_only_after_its_backoff(monkeypatch):
    fail_for_message_id(monkeypatch, "CAF1a2b3c4d5e6@mail.acme-widgets.com")
    raw, outcome = capture(fixture_bytes("multipart_alternative.eml"))
    assert outcome.status == Status.FAILED
    monkeypatch.undo()  # the fault is gone; only the backoff holds the retry back
    assert sweep_pending() == 0  # one attempt: back off a minute
    set_updated(raw, timedelta(seconds=30))
    assert sweep_pending() == 0
    set_updated(raw, timedelta(seconds=61))
    assert sweep_pending() == 1
    raw.refresh_from_db()
    assert raw.status == Status.PROCESSED
    assert raw.attempts == 2


# --- failures ---------------------------------------------------------------------------------


def test_an_unexpected_error_marks_the_message_failed_with_traceback_and_attempts(monkeypatch):
    fail_for_message_id(monkeypatch, "2047.2231@initech.de")
    raw, outcome = capture(fixture_bytes("rfc2047_rfc2231.eml"))
    assert outcome.status == Status.FAILED
    assert outcome.reason_code == "error"
    assert raw.status == Status.FAILED
    assert raw.attempts == 1
    assert "RuntimeError: injected fault for the test" in raw.traceback
    assert "resolve" in raw.traceback
    assert EmailMessage.objects.count() == 0  # the failed attempt left nothing half-written


def test_a_message_that_keeps_failing_is_parked_after_the_configured_attempts(
    settings, monkeypatch
):
    settings.MAILWARDEN_MAX_PROCESS_ATTEMPTS = 3
    fail_for_message_id(monkeypatch, "2047.2231@initech.de")
    raw, outcome = capture(fixture_bytes("rfc2047_rfc2231.eml"))
    assert (outcome.reason_code, raw.attempts) == ("error", 1)
    outcome = process_raw_message(raw.pk)
    assert outcome.reason_code == "error"
    outcome = process_raw_message(raw.pk)
    raw.refresh_from_db()
    assert outcome.status == Status.FAILED
    assert outcome.reason_code == "parked"
    assert raw.reason_code == "parked"
    assert raw.attempts == 3
    set_updated(raw, timedelta(days=1))
    assert sweep_pending() == 0  # parked: waits for an admin, not the sweeper


def test_one_failing_message_in_a_batch_does_not_fail_the_others(monkeypatch):
    fail_for_message_id(monkeypatch, "2047.2231@initech.de")
    names = ["multipart_alternative.eml", "rfc2047_rfc2231.eml", "calendar_invite.eml", "draft.eml"]
    raws = [store(fixture_bytes(n)) for n in names]
    outcomes = {o.raw_id: o for o in process_raw_messages([r.pk for r in raws])}
    statuses = [outcomes[r.pk].status for r in raws]
    assert statuses == [Status.PROCESSED, Status.FAILED, Status.PROCESSED, Status.REJECTED]
    assert EmailMessage.objects.count() == 2
    assert RawMessage.objects.get(pk=raws[0].pk).attempts == 1
    assert RawMessage.objects.get(pk=raws[1].pk).attempts == 1


def test_every_raw_message_ends_processed_rejected_or_failed_after_processing(monkeypatch):
    fail_for_message_id(monkeypatch, "inline-img@globex.co.uk")
    raws = [store(p.read_bytes()) for p in sorted(MAIL_DIR.glob("*.eml"))]
    raws.append(store(b"\x00\x01 not mail at all"))
    raws.append(store(make_mail(message_id="<same@globex.co.uk>", body="first")))
    raws.append(store(make_mail(message_id="<same@globex.co.uk>", body="second copy")))
    outcomes = process_raw_messages([r.pk for r in raws])
    assert len(outcomes) == len(raws)
    final = dict(RawMessage.objects.values_list("pk", "status"))
    assert set(final.values()) <= {Status.PROCESSED, Status.REJECTED, Status.FAILED}
    assert {o.raw_id: o.status for o in outcomes} == final
    assert list(final.values()).count(Status.FAILED) == 1


@pytest.mark.parametrize("save", [storage.save_raw, storage.save_blob])
def test_a_file_of_the_right_size_but_other_bytes_is_rewritten_not_trusted(save):
    # What a crash between rename and syncfs can leave: the name, the size, no data.
    data = b"Subject: the real bytes\r\n\r\nbody\r\n"
    digest, rel = save(data)
    root = storage.raw_root() if save is storage.save_raw else storage.blob_root()
    (root / rel).write_bytes(b"\0" * len(data))
    assert save(data) == (digest, rel)
    assert (root / rel).read_bytes() == data
    assert save(data) == (digest, rel)  # and the same bytes again are left as they are
    assert (root / rel).read_bytes() == data
