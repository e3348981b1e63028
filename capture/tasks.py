"""Celery tasks: thin, idempotent wrappers over service functions (docs/architecture.md,
"Where code goes"). Producers queue them by name through capture/dispatch.py; the names are
the constants there.

Every periodic task has a management command calling the same function.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from capture import dispatch, dsr
from capture.imap.mailboxes import queue_due_mailboxes
from capture.imap.sync import sync_mailbox as run_mailbox_sync
from capture.models import MailboxConnection
from capture.operations import sweep_pending as sweep
from capture.pipeline import process_raw_messages
from capture.purge import purge_expired as run_purge
from capture.purge import run_niced
from capture.rematch import rematch_addresses as rematch
from capture.removal import remove_never_logged as remove_matching_mail
from capture.retention import recompute_new_messages, run_job
from capture.reviews import send_review_reminders


@shared_task(name=dispatch.PROCESS_RAW_BATCH, acks_late=True, ignore_result=True)
def process_raw_batch(raw_ids: list[int]) -> None:
    """Process stored raw messages. Failures are recorded on the rows; the sweeper retries
    them with backoff (capture.operations.due_for_processing), so the task never retries."""
    process_raw_messages(raw_ids)


@shared_task(name=dispatch.SWEEP_PENDING, ignore_result=True)
def sweep_pending() -> int:
    """Beat, every minute: re-queue raw messages left pending and failed ones due a retry."""
    return sweep()


@shared_task(name=dispatch.REMATCH_ADDRESSES, ignore_result=True)
def rematch_addresses(addresses: list[str]) -> int:
    """Link stored mail to contacts that just gained these addresses."""
    return rematch(addresses)


@shared_task(name=dispatch.SYNC_DUE_MAILBOXES)
def sync_due_mailboxes() -> int:
    """Beat, every minute: queue a sync for every due mailbox."""
    return len(queue_due_mailboxes())


@shared_task(name=dispatch.SYNC_MAILBOX, acks_late=True)
def sync_mailbox(mailbox_id: int) -> dict[str, Any]:
    """Sync one mailbox; a second worker on the same mailbox returns "busy" at once."""
    try:
        return run_mailbox_sync(mailbox_id).as_dict()
    except MailboxConnection.DoesNotExist:
        return {"mailbox_id": mailbox_id, "status": "deleted"}


@shared_task(name=dispatch.REMOVE_NEVER_LOGGED, acks_late=True, ignore_result=True)
def remove_never_logged(rule_id: int) -> dict[str, int]:
    """Delete the stored mail a never-log rule matches (offered when the rule is added)."""
    return remove_matching_mail(rule_id)


@shared_task(name=dispatch.RUN_DATA_SUBJECT_REQUEST, acks_late=True, ignore_result=True)
def run_data_subject_request(request_id: int) -> None:
    """Carry out a data-subject request; its row records the outcome (failed: see admin)."""
    dsr.run_request(request_id)


@shared_task(name=dispatch.EXPIRE_DSR_ARCHIVES, ignore_result=True)
def expire_dsr_archives() -> int:
    """Beat, hourly: delete access archives nobody downloaded before they expired."""
    return dsr.expire_archives()


@shared_task(name=dispatch.PURGE_EXPIRED, ignore_result=True)
def purge_expired() -> int:
    """Beat, hourly: act on due messages, vacuum the bin, drain the file outbox."""
    return run_niced(run_purge).pk


@shared_task(name=dispatch.RECOMPUTE_EXPIRY, acks_late=True, ignore_result=True)
def recompute_expiry(job_id: int) -> dict[str, int]:
    """Recompute expires_at over an ExpiryJob's scope (a policy, link or consent changed)."""
    return run_job(job_id)


@shared_task(name=dispatch.EXPIRY_OF_NEW_MESSAGES, ignore_result=True)
def expiry_of_new_messages() -> dict[str, int]:
    """Beat: give the messages stored since the last run their expires_at."""
    return recompute_new_messages()


@shared_task(name=dispatch.REVIEW_REMINDERS, ignore_result=True)
def disposition_review_reminders() -> int:
    """Beat, weekly: remind each reviewer of the dispositions waiting for them."""
    return send_review_reminders()


LOCAL_TASKS = (
    run_data_subject_request,
    expire_dsr_archives,
    purge_expired,
    recompute_expiry,
    expiry_of_new_messages,
    disposition_review_reminders,
    remove_never_logged,
    process_raw_batch,
    sweep_pending,
    rematch_addresses,
    sync_due_mailboxes,
    sync_mailbox,
)
