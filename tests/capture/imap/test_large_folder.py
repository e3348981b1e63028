from __future__ import annotations

import pytest

from capture.imap.sync import sync_mailbox
from capture.models import MailboxFolder, RawMessage
from tests.capture.imap.conftest import make_message

pytestmark = pytest.mark.django_db


def test_a_folder_of_2000_messages_is_stored_once_each_in_batches(dovecot, make_mailbox, settings):
    settings.MAILWARDEN_IMAP_BATCH_SIZE = 250
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", (make_message(size=1500) for _ in range(2000)))
    progress: list[tuple[str, int, int]] = []

    report = sync_mailbox(mailbox.pk, enqueue=False, progress=lambda *a: progress.append(a))

    assert report.status == "ok"
    assert report.total("stored") == 2000
    keys = RawMessage.objects.filter(mailbox=mailbox).values_list("idempotency_key", flat=True)
    assert len(set(keys)) == 2000
    assert MailboxFolder.objects.get(mailbox=mailbox, name="INBOX").last_uid == 2000
    # One progress call before the first batch, then one per batch of 250.
    assert [p[1] for p in progress if p[0] == "INBOX"] == list(range(0, 2001, 250))
