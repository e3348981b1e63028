from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from capture.models import MailboxConnection, RawMessage
from capture.tasks import sync_due_mailboxes
from tests.capture.imap.conftest import make_message

pytestmark = pytest.mark.django_db


def test_beat_syncs_due_mailboxes_only(dovecot, make_mailbox, django_capture_on_commit_callbacks):
    now = timezone.now()
    due = make_mailbox()
    also_due = make_mailbox(next_sync_at=now - timedelta(minutes=1))
    later = make_mailbox(next_sync_at=now + timedelta(minutes=5))
    paused = make_mailbox(paused_reason="Paused by an admin.")
    disabled = make_mailbox(enabled=False)
    being_synced = make_mailbox(lease_token="other", lease_until=now + timedelta(minutes=5))
    for mailbox in (due, also_due, later, paused, disabled, being_synced):
        dovecot.append(mailbox.username, "INBOX", [make_message()])

    with django_capture_on_commit_callbacks(execute=True):
        queued = sync_due_mailboxes()

    assert queued == 2
    synced = set(RawMessage.objects.values_list("mailbox_id", flat=True))
    assert synced == {due.pk, also_due.pk}
    due.refresh_from_db()
    assert due.next_sync_at > now


def test_the_sync_task_reports_a_deleted_mailbox_instead_of_failing():
    from capture.tasks import sync_mailbox

    assert sync_mailbox(987654)["status"] == "deleted"


def test_the_command_syncs_one_mailbox_and_prints_a_summary(dovecot, make_mailbox):
    mailbox = make_mailbox()
    other = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message() for _ in range(3)])
    dovecot.append(other.username, "INBOX", [make_message()])
    out = StringIO()

    call_command("sync_mailboxes", "--mailbox", str(mailbox.pk), stdout=out, stderr=StringIO())

    assert f"mailbox {mailbox.pk}: ok" in out.getvalue()
    assert "stored=3" in out.getvalue()
    assert not RawMessage.objects.filter(mailbox=other).exists()


def test_the_command_without_arguments_syncs_the_due_mailboxes(dovecot, make_mailbox):
    due = make_mailbox()
    not_due = make_mailbox(next_sync_at=timezone.now() + timedelta(hours=1))
    out = StringIO()

    call_command("sync_mailboxes", "--no-progress", stdout=out)

    assert f"mailbox {due.pk}: ok" in out.getvalue()
    assert f"mailbox {not_due.pk}" not in out.getvalue()


def test_the_command_refuses_an_unknown_mailbox():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("sync_mailboxes", "--mailbox", "424242")


def test_the_command_reports_a_failed_mailbox(make_mailbox):
    from tests.capture.imap.conftest import free_port

    mailbox = make_mailbox(port=free_port())
    out, err = StringIO(), StringIO()

    call_command(
        "sync_mailboxes", "--mailbox", str(mailbox.pk), "--no-progress", stdout=out, stderr=err
    )

    assert "error" in out.getvalue()
    assert "did not sync cleanly" in err.getvalue()
    assert MailboxConnection.objects.get(pk=mailbox.pk).last_error
