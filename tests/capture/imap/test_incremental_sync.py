from __future__ import annotations

import pytest

from capture.imap.sync import sync_mailbox
from capture.models import MailboxFolder, RawMessage
from tests.capture.imap.conftest import days_ago, make_message

pytestmark = pytest.mark.django_db


def test_a_second_run_fetches_only_mail_that_arrived_since(dovecot, make_mailbox):
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(3)])
    sync_mailbox(mailbox.pk, enqueue=False)
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(2)])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok"
    assert report.total("fetched") == 2
    assert report.total("stored") == 2
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 5
    assert MailboxFolder.objects.get(mailbox=mailbox, name="INBOX").last_uid == 5


def test_a_run_with_nothing_new_fetches_nothing(dovecot, make_mailbox):
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(3)])
    sync_mailbox(mailbox.pk, enqueue=False)

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok"
    assert report.total("fetched") == 0
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 3


def test_mail_arriving_after_the_first_sync_is_captured_whatever_its_date(dovecot, make_mailbox):
    # The window limits the first sync only; later arrivals (e.g. moved in from an archive) count.
    mailbox = make_mailbox(sync_window_days=7)
    dovecot.append(mailbox.username, "INBOX", [make_message()])
    sync_mailbox(mailbox.pk, enqueue=False)
    dovecot.append(mailbox.username, "INBOX", [make_message()], msg_time=days_ago(60))

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.total("stored") == 1


def test_an_empty_first_window_still_moves_the_checkpoint_past_old_mail(dovecot, make_mailbox):
    mailbox = make_mailbox(sync_window_days=7)
    dovecot.append(
        mailbox.username, "INBOX", [make_message(), make_message()], msg_time=days_ago(60)
    )

    sync_mailbox(mailbox.pk, enqueue=False)
    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.total("fetched") == 0
    assert MailboxFolder.objects.get(mailbox=mailbox, name="INBOX").last_uid == 2
    assert not RawMessage.objects.filter(mailbox=mailbox).exists()


def test_a_stale_checkpoint_with_uid_star_quirk_fetches_nothing_again(dovecot, make_mailbox):
    # "UID 10:*" on a folder whose highest UID is 3 still answers 3 (RFC 3501 6.4.8).
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(3)])
    sync_mailbox(mailbox.pk, enqueue=False)
    folder = MailboxFolder.objects.get(mailbox=mailbox, name="INBOX")
    folder.last_uid = 9
    folder.save()

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.total("fetched") == 0
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 3
