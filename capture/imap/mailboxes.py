"""Operating mailbox connections: which are due, queue a sync now, pause and resume.

Views, admin actions, Celery tasks and the management command call these; none of them
touches the connection's fields directly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from capture import dispatch
from capture.models import MailboxConnection
from core.dispatch import on_commit_send
from governance.audit import record_event


def due_mailboxes() -> QuerySet[MailboxConnection]:
    """Enabled, not paused, not being synced, and whose next run is due."""
    now = timezone.now()
    return (
        MailboxConnection.objects.filter(enabled=True, paused_reason="")
        .filter(Q(next_sync_at__isnull=True) | Q(next_sync_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_sync_at", "pk")
    )


def queue_due_mailboxes() -> list[int]:
    """Queue one sync task per due mailbox; returns their ids.

    next_sync_at moves one interval ahead as it is queued, so a backlogged broker does not
    get the same mailbox again every minute; the run itself sets it again when it ends.
    """
    now = timezone.now()
    ids: list[int] = []
    for mailbox in due_mailboxes().only("pk", "interval_minutes"):
        MailboxConnection.objects.filter(pk=mailbox.pk).update(
            next_sync_at=now + timedelta(minutes=mailbox.interval_minutes)
        )
        ids.append(mailbox.pk)
    for mailbox_id in ids:
        transaction.on_commit(on_commit_send(dispatch.SYNC_MAILBOX, mailbox_id))
    return ids


def request_sync(mailbox: MailboxConnection, *, actor: Any = None) -> bool:
    """Queue a sync of this mailbox now (admin "sync now", API `sync`); False when paused/disabled."""
    if not mailbox.enabled or mailbox.paused_reason:
        return False
    record_event("mailbox.sync_requested", actor=actor, obj=mailbox, channel="imap")
    transaction.on_commit(on_commit_send(dispatch.SYNC_MAILBOX, mailbox.pk))
    return True


def resume_mailbox(mailbox: MailboxConnection, *, actor: Any = None) -> bool:
    """Clear a pause (after auth failures or by hand) and make the mailbox due now."""
    with transaction.atomic():
        row = MailboxConnection.objects.select_for_update().get(pk=mailbox.pk)
        was_paused = bool(row.paused_reason)
        row.paused_reason = ""
        row.consecutive_auth_failures = 0
        row.consecutive_errors = 0
        row.next_sync_at = timezone.now()
        row.save(
            update_fields=[
                "paused_reason", "consecutive_auth_failures", "consecutive_errors", "next_sync_at", "updated",
            ]
        )  # fmt: skip
        if was_paused:
            record_event("mailbox.resumed", actor=actor, obj=row, channel="imap")
    mailbox.refresh_from_db()
    return was_paused


def pause_mailbox(
    mailbox: MailboxConnection, *, reason: str = "Paused by an admin.", actor: Any = None
) -> None:
    """Stop syncing until someone resumes it; the owner sees the reason."""
    with transaction.atomic():
        updated = MailboxConnection.objects.filter(pk=mailbox.pk).update(
            paused_reason=reason[:200] or "Paused."
        )
        if updated:
            record_event(
                "mailbox.paused",
                actor=actor,
                obj=mailbox,
                channel="imap",
                detail={"reason": "manual"},
            )
    mailbox.refresh_from_db()


def save_mailbox(
    mailbox: MailboxConnection,
    *,
    secret: str | None = None,
    actor: Any = None,
    channel: str = "",
    address: str = "",
    changed: list[str] | None = None,
) -> MailboxConnection:
    """Create or update a connection (secret encrypted when given) and audit it without the secret."""
    from capture.imap.credentials import set_secret

    created = mailbox.pk is None
    if secret is not None:
        set_secret(mailbox, secret)
    with transaction.atomic():
        if created:
            mailbox.save()
        else:
            fields = sorted(
                {*(changed or []), *(["secret_encrypted"] if secret is not None else [])}
            )
            mailbox.save(update_fields=[*fields, "updated"] if changed is not None else None)
        record_event(
            "mailbox.created" if created else "mailbox.updated",
            actor=actor, obj=mailbox, channel=channel, address=address,
            detail={
                "fields": sorted(changed or []),
                "secret_changed": secret is not None,
                "owner": mailbox.owner_id,
            },
        )  # fmt: skip
    return mailbox


def delete_mailbox(
    mailbox: MailboxConnection, *, actor: Any = None, channel: str = "", address: str = ""
) -> None:
    """Remove a connection; captured mail stays (its raw rows just lose the link)."""
    with transaction.atomic():
        record_event("mailbox.deleted", actor=actor, obj=mailbox, channel=channel, address=address)
        mailbox.delete()
