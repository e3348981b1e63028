from __future__ import annotations

import pytest

from capture.imap.sync import sync_mailbox
from capture.models import MailboxFolder, RawMessage
from tests.capture.imap.conftest import days_ago, make_message

pytestmark = pytest.mark.django_db


def test_first_sync_stores_inbox_and_the_special_use_sent_folder(dovecot, make_mailbox):
    mailbox = make_mailbox()
    user = mailbox.username
    dovecot.append(user, "INBOX", [make_message() for _ in range(3)])
    dovecot.append(user, "Sent Mail", [make_message() for _ in range(2)])
    dovecot.append(user, "Archive", [make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok", report.error
    assert [f.name for f in report.folders] == ["INBOX", "Sent Mail"]
    raws = RawMessage.objects.filter(mailbox=mailbox)
    assert raws.count() == 5
    assert set(raws.values_list("channel", flat=True)) == {"imap"}
    assert set(raws.values_list("user_id", flat=True)) == {mailbox.owner_id}
    uidvalidity = dovecot.uidvalidity(user, "INBOX")
    assert set(
        raws.filter(source__contains=":INBOX:").values_list("idempotency_key", flat=True)
    ) == {f"imap:{mailbox.pk}:INBOX:{uidvalidity}:{uid}" for uid in (1, 2, 3)}


def test_first_sync_records_the_folder_checkpoints(dovecot, make_mailbox):
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(4)])

    sync_mailbox(mailbox.pk, enqueue=False)

    inbox = MailboxFolder.objects.get(mailbox=mailbox, name="INBOX")
    assert inbox.uidvalidity == dovecot.uidvalidity(mailbox.username, "INBOX")
    assert inbox.last_uid == 4
    assert inbox.messages_synced == 4
    assert inbox.last_synced_at is not None
    mailbox.refresh_from_db()
    assert mailbox.last_sync_at is not None
    assert mailbox.next_sync_at > mailbox.last_sync_at
    assert mailbox.lease_until is None


def test_first_sync_leaves_mail_older_than_the_window_alone(dovecot, make_mailbox):
    mailbox = make_mailbox(sync_window_days=30)
    dovecot.append(mailbox.username, "INBOX", [make_message()], msg_time=days_ago(90))
    dovecot.append(mailbox.username, "INBOX", [make_message(), make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.total("stored") == 2
    assert not RawMessage.objects.filter(idempotency_key__endswith=":1").exists()


def test_sync_never_marks_mail_read_or_changes_flags_on_the_server(dovecot, make_mailbox):
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(2)])
    dovecot.append(mailbox.username, "INBOX", [make_message()], flags=(b"\\Flagged",))
    before = dovecot.flags(mailbox.username, "INBOX")

    sync_mailbox(mailbox.pk, enqueue=False)

    after = dovecot.flags(mailbox.username, "INBOX")
    assert after == before
    assert all(b"\\Seen" not in flags for flags in after.values())
    assert len(after) == 3  # nothing deleted


def test_stored_bytes_are_exactly_the_servers(dovecot, make_mailbox):
    from capture.storage import read_raw

    mailbox = make_mailbox()
    original = make_message(subject="Exact bytes")
    dovecot.append(mailbox.username, "INBOX", [original])

    sync_mailbox(mailbox.pk, enqueue=False)

    raw = RawMessage.objects.get(mailbox=mailbox)
    assert read_raw(raw.storage_path) == original
