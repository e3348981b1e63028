"""Celery tasks: thin, idempotent wrappers over service functions (STYLE.md)."""

from __future__ import annotations

from celery import shared_task

from capture.imap.tasks import sync_due_mailboxes, sync_mailbox  # noqa: F401  (registered with Celery)
from config.celery import app


def app_is_eager() -> bool:
    return bool(app.conf.task_always_eager)


@shared_task(name="capture.process_raw_batch", acks_late=True)
def process_raw_batch(raw_ids: list[int]) -> None:
    from capture.pipeline import ingest_raw_messages

    ingest_raw_messages(raw_ids)
