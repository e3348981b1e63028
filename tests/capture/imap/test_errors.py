from __future__ import annotations

import socket
import threading

import pytest
from django.utils import timezone

from capture.imap.mailboxes import resume_mailbox
from capture.imap.sync import sync_mailbox
from capture.models import RawMessage
from governance.models import AuditEvent
from tests.capture.imap.conftest import free_port, make_message

pytestmark = pytest.mark.django_db


def test_a_wrong_password_is_recorded_without_the_password(dovecot, make_mailbox):
    mailbox = make_mailbox(password="wrong-pa55word")

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "auth_failed"
    mailbox.refresh_from_db()
    assert mailbox.consecutive_auth_failures == 1
    assert "authentication failed" in mailbox.last_error.lower()
    assert "wrong-pa55word" not in mailbox.last_error
    assert mailbox.last_error_at is not None
    assert mailbox.next_sync_at > timezone.now()
    assert mailbox.paused_reason == ""


def test_repeated_auth_failures_pause_the_mailbox_until_resumed(dovecot, make_mailbox, settings):
    settings.MAILWARDEN_IMAP_MAX_AUTH_FAILURES = 3
    mailbox = make_mailbox(password="wrong")
    dovecot.append(mailbox.username, "INBOX", [make_message()])
    for _ in range(3):
        sync_mailbox(mailbox.pk, enqueue=False)
    mailbox.refresh_from_db()
    assert mailbox.consecutive_auth_failures == 3
    assert "failed logins" in mailbox.paused_reason
    assert mailbox.enabled
    assert AuditEvent.objects.filter(action="mailbox.paused", object_id=str(mailbox.pk)).exists()

    # Paused: the next run does not even connect.
    assert sync_mailbox(mailbox.pk, enqueue=False).status == "paused"
    mailbox.refresh_from_db()
    assert mailbox.consecutive_auth_failures == 3

    from capture.imap.credentials import set_secret

    set_secret(mailbox, "secret")
    mailbox.save()
    assert resume_mailbox(mailbox, actor=mailbox.owner)
    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok"
    mailbox.refresh_from_db()
    assert (mailbox.consecutive_auth_failures, mailbox.last_error, mailbox.paused_reason) == (
        0,
        "",
        "",
    )
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 1


def test_a_refused_connection_is_recorded_and_retried_later(make_mailbox):
    mailbox = make_mailbox(port=free_port())  # nothing listens there

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "error"
    mailbox.refresh_from_db()
    assert "connection refused" in mailbox.last_error
    assert mailbox.consecutive_errors == 1
    assert mailbox.consecutive_auth_failures == 0
    first_retry = mailbox.next_sync_at - mailbox.last_error_at

    sync_mailbox(mailbox.pk, enqueue=False)

    mailbox.refresh_from_db()
    assert mailbox.consecutive_errors == 2
    assert mailbox.next_sync_at - mailbox.last_error_at > first_retry  # backoff grows
    assert mailbox.lease_until is None


def test_a_server_that_never_answers_times_out(make_mailbox, settings):
    settings.MAILWARDEN_IMAP_TIMEOUT_SECONDS = 1
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    mailbox = make_mailbox(port=silent.getsockname()[1])
    try:
        report = sync_mailbox(mailbox.pk, enqueue=False)
    finally:
        silent.close()
        for s in accepted:
            s.close()

    assert report.status == "error"
    mailbox.refresh_from_db()
    assert "timeout" in mailbox.last_error.lower() or "timed out" in mailbox.last_error.lower()


def test_a_secret_encrypted_with_a_lost_key_counts_as_an_auth_failure(make_mailbox, settings):
    mailbox = make_mailbox()
    settings.MAILWARDEN_ENCRYPTION_KEY = "a completely different key"

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "auth_failed"
    mailbox.refresh_from_db()
    assert "cannot be decrypted" in mailbox.last_error


def test_a_disabled_mailbox_is_not_synced(dovecot, make_mailbox):
    mailbox = make_mailbox(enabled=False)
    dovecot.append(mailbox.username, "INBOX", [make_message()])

    assert sync_mailbox(mailbox.pk, enqueue=False).status == "disabled"
    assert not RawMessage.objects.filter(mailbox=mailbox).exists()
