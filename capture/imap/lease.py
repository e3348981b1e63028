"""One sync at a time per mailbox: a lease row update that is atomic on SQLite and PostgreSQL.

A conditional UPDATE takes the lease only when it is free or expired; on PostgreSQL a second
concurrent UPDATE waits for the first to commit and then re-checks the condition, so exactly
one worker wins. The lease is renewed inside every batch transaction (a fence: a worker whose
lease was taken over cannot commit) and expires by itself if the worker dies.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from capture.imap.errors import LeaseLost
from capture.models import MailboxConnection


def _expiry():
    return timezone.now() + timedelta(seconds=settings.MAILWARDEN_IMAP_LEASE_SECONDS)


def acquire_lease(mailbox_id: int) -> str | None:
    """A lease token, or None when another worker holds the mailbox."""
    token = uuid.uuid4().hex
    taken = (
        MailboxConnection.objects.filter(pk=mailbox_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .update(lease_token=token, lease_until=_expiry())
    )
    return token if taken else None


def renew_lease(mailbox_id: int, token: str) -> None:
    """Extend our lease; raises LeaseLost when it is no longer ours."""
    renewed = MailboxConnection.objects.filter(pk=mailbox_id, lease_token=token).update(
        lease_until=_expiry()
    )
    if not renewed:
        raise LeaseLost("the mailbox lease was taken over by another worker")


def release_lease(mailbox_id: int, token: str) -> None:
    MailboxConnection.objects.filter(pk=mailbox_id, lease_token=token).update(
        lease_token="", lease_until=None
    )
