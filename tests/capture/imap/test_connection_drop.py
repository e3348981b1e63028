from __future__ import annotations

import socket

import pytest

from capture.imap.sync import sync_mailbox
from capture.models import MailboxConnection, MailboxFolder, RawMessage
from tests.capture.imap.conftest import make_message

pytestmark = pytest.mark.django_db


def test_a_connection_dropped_mid_fetch_loses_and_duplicates_nothing(
    dovecot, make_mailbox, cutting_proxy, settings
):
    settings.MAILWARDEN_IMAP_BATCH_SIZE = 10
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message(size=3000) for _ in range(50)])
    proxy = cutting_proxy(cut_after=80_000)  # about halfway through the 150 KB of bodies
    MailboxConnection.objects.filter(pk=mailbox.pk).update(port=proxy.port)

    broken = sync_mailbox(mailbox.pk, enqueue=False)

    assert broken.status == "error"
    assert proxy.cuts == 1
    mailbox.refresh_from_db()
    assert mailbox.last_error and mailbox.last_error_at
    committed = RawMessage.objects.filter(mailbox=mailbox).count()
    assert 0 < committed < 50
    folder = MailboxFolder.objects.get(mailbox=mailbox, name="INBOX")
    assert folder.last_uid == committed  # the checkpoint never runs ahead of stored mail

    MailboxConnection.objects.filter(pk=mailbox.pk).update(port=dovecot.port)
    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok"
    assert report.total("stored") == 50 - committed
    keys = list(
        RawMessage.objects.filter(mailbox=mailbox).values_list("idempotency_key", flat=True)
    )
    assert len(keys) == len(set(keys)) == 50
    folder.refresh_from_db()
    assert folder.last_uid == 50
    mailbox.refresh_from_db()
    assert (mailbox.last_error, mailbox.consecutive_errors) == ("", 0)


def test_a_checkpoint_lost_after_commit_is_absorbed_by_the_idempotency_key(dovecot, make_mailbox):
    # A crash between commit and the next batch can at worst repeat a batch: same keys, no new rows.
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(5)])
    sync_mailbox(mailbox.pk, enqueue=False)
    MailboxFolder.objects.filter(mailbox=mailbox, name="INBOX").update(
        last_uid=2, last_synced_at=None
    )

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.total("fetched") == 3
    assert report.total("stored") == 0
    assert report.total("duplicates") == 3
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 5


def test_a_connection_dropped_during_login_is_not_an_auth_failure(
    dovecot, make_mailbox, cutting_proxy, settings
):
    # imapclient re-raises any failure of LOGIN as LoginError: a server that went away while
    # we logged in refused nothing, so it must not count toward pausing the mailbox.
    settings.MAILWARDEN_IMAP_MAX_AUTH_FAILURES = 1
    # What the server sends before the LOGIN reply: the greeting, then (imaplib asks) CAPABILITY,
    # whose tagged reply echoes imaplib's first tag: 4 letters and "0", as long as "ABCD0".
    with socket.create_connection((dovecot.host, dovecot.port)) as s:
        reader = s.makefile("rb")
        before_login = len(reader.readline())
        s.sendall(b"ABCD0 CAPABILITY\r\n")
        while not (line := reader.readline()).startswith(b"ABCD0 "):
            before_login += len(line)
        before_login += len(line)
    proxy = cutting_proxy(cut_after=before_login)
    mailbox = make_mailbox(port=proxy.port)

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "error"
    assert proxy.cuts == 1
    mailbox.refresh_from_db()
    assert "connection lost while logging in" in mailbox.last_error
    assert mailbox.consecutive_auth_failures == 0
    assert mailbox.paused_reason == ""
