"""Where stored raw messages go to be processed.

With a broker: Celery tasks (batched per commit). Embedded mode (no broker): an in-process
worker thread when `run_embedded` started one, else inline right after the commit (tests,
management commands). Processing is idempotent, so a duplicate enqueue is harmless.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import threading
from collections.abc import Sequence

from django.conf import settings

log = logging.getLogger(__name__)

_local_queue: stdlib_queue.Queue[list[int]] | None = None
_local_thread: threading.Thread | None = None
# Raw messages per Celery task. A batch costs ~30-40 ms of fixed work (policy, bulk lookups,
# ~15 bulk statements) besides its messages: at 50 that was ~0.7 ms of a message's ~4 ms of
# CPU. Tasks of 100 cut it in half and still keep two worker processes busy
# (bench/ingest.py: 3.1-4.1 vs 4.3-4.6 CPU ms/msg end to end in alternating runs).
BATCH = 100


def enqueue_processing(raw_ids: Sequence[int]) -> None:
    from capture import tasks

    ids = list(raw_ids)
    if not ids:
        return
    if _local_queue is not None:
        _local_queue.put(ids)
        return
    if settings.CELERY_BROKER_URL and not tasks.app_is_eager():
        for start in range(0, len(ids), BATCH):
            tasks.process_raw_batch.delay(ids[start : start + BATCH])
        return
    from capture.pipeline import ingest_raw_messages

    ingest_raw_messages(ids)


def start_local_worker() -> None:
    """Start the embedded mode's background processing thread (idempotent)."""
    global _local_queue, _local_thread
    if _local_thread is not None and _local_thread.is_alive():
        return
    _local_queue = stdlib_queue.Queue()

    def run() -> None:
        from django.db import close_old_connections

        from capture.pipeline import ingest_raw_messages

        assert _local_queue is not None
        while True:
            ids = _local_queue.get()
            close_old_connections()
            try:
                ingest_raw_messages(ids)
            except Exception:  # the boundary: never let the worker thread die
                log.exception("in-process processing failed for %d messages", len(ids))

    _local_thread = threading.Thread(target=run, name="mailwarden-local-worker", daemon=True)
    _local_thread.start()
