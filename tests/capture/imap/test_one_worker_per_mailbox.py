from __future__ import annotations

import threading

import pytest
from django.db import connection

from capture.imap.lease import acquire_lease, release_lease
from capture.imap.sync import sync_mailbox
from capture.models import MailboxConnection, RawMessage
from tests.capture.imap.conftest import make_message


@pytest.mark.django_db(transaction=True)
def test_a_second_worker_on_the_same_mailbox_returns_busy_and_nothing_is_duplicated(
    dovecot, make_mailbox, settings
):
    settings.MAILWARDEN_IMAP_BATCH_SIZE = 5
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(20)])
    first_is_syncing = threading.Event()
    second_has_tried = threading.Event()
    reports = {}

    def hold_after_first_batch(folder, done, total):
        if done == 5:
            first_is_syncing.set()
            second_has_tried.wait(timeout=30)

    def first_worker():
        try:
            reports["first"] = sync_mailbox(
                mailbox.pk, enqueue=False, progress=hold_after_first_batch
            )
        finally:
            first_is_syncing.set()
            connection.close()

    def second_worker():
        try:
            first_is_syncing.wait(timeout=30)
            reports["second"] = sync_mailbox(mailbox.pk, enqueue=False)
        finally:
            second_has_tried.set()
            connection.close()

    threads = [threading.Thread(target=first_worker), threading.Thread(target=second_worker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert reports["second"].status == "busy"
    assert reports["first"].status == "ok"
    assert reports["first"].total("stored") == 20
    keys = list(
        RawMessage.objects.filter(mailbox=mailbox).values_list("idempotency_key", flat=True)
    )
    assert len(keys) == len(set(keys)) == 20
    assert MailboxConnection.objects.get(pk=mailbox.pk).lease_until is None


@pytest.mark.django_db(transaction=True)
def test_only_one_of_many_concurrent_lease_requests_wins(make_mailbox):
    mailbox = make_mailbox()
    barrier = threading.Barrier(4)
    tokens: list[str | None] = []

    def take():
        try:
            barrier.wait(timeout=10)
            tokens.append(acquire_lease(mailbox.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    winners = [t for t in tokens if t]
    assert len(tokens) == 4
    assert len(winners) == 1
    release_lease(mailbox.pk, winners[0])
    assert acquire_lease(mailbox.pk) is not None


@pytest.mark.django_db
def test_an_expired_lease_of_a_dead_worker_is_taken_over(make_mailbox, settings):
    from datetime import timedelta

    from django.utils import timezone

    mailbox = make_mailbox()
    MailboxConnection.objects.filter(pk=mailbox.pk).update(
        lease_token="dead-worker", lease_until=timezone.now() - timedelta(seconds=1)
    )

    assert acquire_lease(mailbox.pk) is not None
