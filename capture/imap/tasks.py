"""IMAP sync tasks (owned by the IMAP work)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="capture.sync_due_mailboxes")
def sync_due_mailboxes() -> None:
    return None


@shared_task(name="capture.sync_mailbox")
def sync_mailbox(mailbox_id: int) -> None:
    return None
