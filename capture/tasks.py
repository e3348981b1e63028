"""Celery tasks: thin, idempotent wrappers over service functions (docs/architecture.md, "Where code goes").

Every periodic task has a management command calling the same function.
"""

from __future__ import annotations

from celery import shared_task

from capture.imap.tasks import sync_due_mailboxes, sync_mailbox  # noqa: F401  (registered with Celery)
from config.celery import app


def app_is_eager() -> bool:
    return bool(app.conf.task_always_eager)


@shared_task(name="capture.process_raw_batch", acks_late=True, ignore_result=True)
def process_raw_batch(raw_ids: list[int]) -> None:
    """Process stored raw messages. Failures are recorded on the rows; the sweeper retries
    them with backoff (capture.pipeline.due_for_processing), so the task itself never retries."""
    from capture.pipeline import ingest_raw_messages

    ingest_raw_messages(raw_ids)


@shared_task(name="capture.sweep_pending", ignore_result=True)
def sweep_pending() -> int:
    from capture.pipeline import sweep_pending as sweep

    return sweep()


@shared_task(name="capture.rematch_addresses", ignore_result=True)
def rematch_addresses(addresses: list[str]) -> int:
    from capture.rematch import rematch_addresses as rematch

    return rematch(addresses)
