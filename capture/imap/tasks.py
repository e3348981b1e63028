"""IMAP sync tasks: thin wrappers over capture.imap.mailboxes and capture.imap.sync."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from capture.models import MailboxConnection


@shared_task(name="capture.sync_due_mailboxes")
def sync_due_mailboxes() -> int:
    """Beat, every minute: queue a sync for every due mailbox."""
    from capture.imap.mailboxes import queue_due_mailboxes

    return len(queue_due_mailboxes())


@shared_task(name="capture.sync_mailbox", acks_late=True)
def sync_mailbox(mailbox_id: int) -> dict[str, Any]:
    """Sync one mailbox; a second worker on the same mailbox returns "busy" at once."""
    from capture.imap.sync import sync_mailbox as run_sync

    try:
        return run_sync(mailbox_id).as_dict()
    except MailboxConnection.DoesNotExist:
        return {"mailbox_id": mailbox_id, "status": "deleted"}
