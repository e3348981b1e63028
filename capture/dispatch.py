"""Capture's task names, and how captured mail is queued for processing.

Producers (the channels, the sweeper, the admin) queue work by these names through
core/dispatch.py; capture/tasks.py defines the tasks under the same names. This module
imports nothing of capture's, so any capture module may call it without an import cycle
(docs/architecture.md, "Layers").
"""

from __future__ import annotations

from collections.abc import Sequence

from core import dispatch

PROCESS_RAW_BATCH = "capture.process_raw_batch"
SWEEP_PENDING = "capture.sweep_pending"
REMATCH_ADDRESSES = "capture.rematch_addresses"
SYNC_MAILBOX = "capture.sync_mailbox"
SYNC_DUE_MAILBOXES = "capture.sync_due_mailboxes"
REMOVE_NEVER_LOGGED = "capture.remove_never_logged"  # queued by governance/never_log.py
RUN_DATA_SUBJECT_REQUEST = "capture.run_data_subject_request"
EXPIRE_DSR_ARCHIVES = "capture.expire_dsr_archives"
PURGE_EXPIRED = "capture.purge_expired"
RECOMPUTE_EXPIRY = "capture.recompute_expiry"  # queued by capture/retention.py (a job id)
EXPIRY_OF_NEW_MESSAGES = "capture.expiry_of_new_messages"
REVIEW_REMINDERS = "capture.disposition_review_reminders"

# Raw messages per Celery task. A batch costs ~30-40 ms of fixed work (policy, bulk lookups,
# ~15 bulk statements) besides its messages: at 50 that was ~0.7 ms of a message's ~4 ms of
# CPU. Tasks of 100 cut it in half and still keep two worker processes busy
# (bench/ingest.py: 3.1-4.1 vs 4.3-4.6 CPU ms/msg end to end in alternating runs).
BATCH = 100


def enqueue_processing(raw_ids: Sequence[int]) -> None:
    """Queue stored raw messages for processing, in tasks of BATCH. Idempotent downstream."""
    ids = list(raw_ids)
    for start in range(0, len(ids), BATCH):
        dispatch.send(PROCESS_RAW_BATCH, ids[start : start + BATCH])


def start_local_processing() -> None:
    """Without a broker: process captured mail in a background thread of this process, so a
    channel's writer (the SMTP listener's) never runs the pipeline itself."""
    dispatch.start_local_worker([PROCESS_RAW_BATCH])
