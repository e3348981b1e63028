from __future__ import annotations

import pytest

from capture.imap.sync import sync_mailbox
from capture.models import MailboxFolder, RawMessage
from tests.capture.imap.conftest import make_message

pytestmark = pytest.mark.django_db


def test_a_message_over_the_size_limit_is_skipped_with_a_reason(dovecot, make_mailbox, settings):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 8000
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message(size=1000)])
    dovecot.append(mailbox.username, "INBOX", [make_message(size=20_000)])
    dovecot.append(mailbox.username, "INBOX", [make_message(size=1000)])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.total("skipped") == 1
    assert report.total("fetched") == 2  # the big body was never downloaded
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 2
    folder = MailboxFolder.objects.get(mailbox=mailbox, name="INBOX")
    assert folder.skipped == 1
    assert folder.last_uid == 3
    [entry] = folder.skipped_log
    assert entry["uid"] == 2
    assert entry["reason"] == "too_large"
    assert entry["size"] > 20_000


def test_a_message_flagged_as_draft_is_never_captured(dovecot, make_mailbox):
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message()], flags=(b"\\Draft",))
    dovecot.append(mailbox.username, "INBOX", [make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.total("stored") == 1
    folder = MailboxFolder.objects.get(mailbox=mailbox, name="INBOX")
    assert [e["reason"] for e in folder.skipped_log] == ["draft"]


def test_the_skipped_log_keeps_only_the_last_100_entries(dovecot, make_mailbox, settings):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 1000
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message(size=3000) for _ in range(120)])

    sync_mailbox(mailbox.pk, enqueue=False)

    folder = MailboxFolder.objects.get(mailbox=mailbox, name="INBOX")
    assert folder.skipped == 120
    assert len(folder.skipped_log) == 100
    assert folder.skipped_log[-1]["uid"] == 120


def test_drafts_junk_trash_and_excluded_folders_are_never_synced(dovecot, make_mailbox, settings):
    settings.MAILWARDEN_IMAP_EXCLUDED_FOLDERS = ["Spam"]
    mailbox = make_mailbox(
        folders=["INBOX", "Drafts", "Junk", "Trash", "Spam", "Projects", "Private"],
        excluded_folders=["Private"],
    )
    for folder in ("INBOX", "Drafts", "Junk", "Trash", "Spam", "Projects", "Private"):
        dovecot.append(mailbox.username, folder, [make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert [f.name for f in report.folders] == ["INBOX", "Projects"]
    assert dict(report.excluded) == {
        "Drafts": "special-use \\drafts",
        "Junk": "special-use \\junk",
        "Trash": "special-use \\trash",
        "Spam": "excluded by name",
        "Private": "excluded by name",
    }
    assert RawMessage.objects.filter(mailbox=mailbox).count() == 2
    assert set(MailboxFolder.objects.filter(mailbox=mailbox).values_list("name", flat=True)) == {
        "INBOX",
        "Projects",
    }


def test_a_configured_folder_missing_on_the_server_is_reported_and_the_rest_synced(
    dovecot, make_mailbox
):
    mailbox = make_mailbox(folders=["INBOX", "Gone"])
    dovecot.append(mailbox.username, "INBOX", [make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "partial"
    assert report.total("stored") == 1
    mailbox.refresh_from_db()
    assert "Gone" in mailbox.last_error
