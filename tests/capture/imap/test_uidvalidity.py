from __future__ import annotations

import pytest

from capture.imap.sync import sync_mailbox
from capture.models import EmailMessage, MailboxFolder, RawMessage
from tests.capture.imap.conftest import make_message


@pytest.mark.django_db(transaction=True)
def test_a_uidvalidity_change_resyncs_without_duplicate_messages(dovecot, make_mailbox):
    mailbox = make_mailbox(folders=["Archive"])
    dovecot.append(mailbox.username, "Archive", [make_message() for _ in range(4)])
    first = sync_mailbox(mailbox.pk)  # processed by the pipeline after each commit
    assert first.total("stored") == 4
    assert EmailMessage.objects.count() == 4
    old_validity = dovecot.uidvalidity(mailbox.username, "Archive")

    dovecot.recreate_folder(mailbox.username, "Archive")
    dovecot.append(mailbox.username, "Archive", [make_message()])
    new_validity = dovecot.uidvalidity(mailbox.username, "Archive")
    assert new_validity != old_validity

    report = sync_mailbox(mailbox.pk)

    assert report.status == "ok"
    assert report.folders[0].resynced
    assert EmailMessage.objects.count() == 5
    # Bodies already captured from this mailbox are not even fetched again.
    assert report.total("duplicates") == 4
    assert report.total("fetched") == 1
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 5
    folder = MailboxFolder.objects.get(mailbox=mailbox, name="Archive")
    assert folder.uidvalidity == new_validity
    assert folder.last_uid == 5


@pytest.mark.django_db
def test_a_uidvalidity_change_before_processing_still_creates_no_duplicate_rows_for_a_uid(
    dovecot, make_mailbox
):
    # Unprocessed raw messages carry no Message-ID yet: they are stored again under the new
    # UIDVALIDITY and the pipeline's Message-ID dedupe absorbs them.
    mailbox = make_mailbox(folders=["Archive"])
    dovecot.append(mailbox.username, "Archive", [make_message() for _ in range(2)])
    sync_mailbox(mailbox.pk, enqueue=False)
    dovecot.recreate_folder(mailbox.username, "Archive")

    report = sync_mailbox(mailbox.pk, enqueue=False)
    again = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.folders[0].resynced
    assert report.total("stored") == 2
    assert again.total("fetched") == 0
    keys = list(
        RawMessage.objects.filter(mailbox=mailbox).values_list("idempotency_key", flat=True)
    )
    assert len(keys) == len(set(keys)) == 4
