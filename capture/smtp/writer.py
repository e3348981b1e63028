"""Group commit for the SMTP listener: one writer thread, many waiting sessions.

fsync costs milliseconds, so committing each message alone caps the listener at a few
hundred messages per second. Sessions hand their message to `GroupCommitWriter.submit`;
the writer thread takes everything that arrived while the previous batch was committing
(plus a window of a few ms), makes the raw files durable, writes all rows in ONE
transaction (`capture.ingest.store_raw_messages`) and only then resolves each session's
future, which is when the session answers 250. A failed batch fails every future in it
(the sessions answer 451 and the clients retry); nothing is acknowledged before commit.

Durability modes (`sync`):
- "syncfs": write all files without fsync, then one syncfs(2) on the raw store's file
  system (falls back to os.sync()), then the transaction. One flush per batch.
- "fsync": fsync each file as it is written (store_raw_messages' default).
Either way the files are on disk before the rows that name them are committed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.conf import settings
from django.db import Error as DbError
from django.db import connection

from capture import storage
from capture.errors import MessageTooLarge, StoreUnavailable
from capture.ingest import RawSpec, store_raw_messages

log = logging.getLogger(__name__)

_STOP = object()
SYNC_MODES = ("syncfs", "fsync")


@dataclass
class _Job:
    specs: list[RawSpec]
    future: Future = field(default_factory=Future)


def _libc_syncfs():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _libc_syncfs()


def sync_filesystem(path: os.PathLike | str) -> None:
    """Flush every dirty file and directory entry of the file system holding `path`."""
    if _syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def store_durably(specs: Sequence[RawSpec], sync: str = "syncfs") -> list[int]:
    """Write the batch's files durably, then all rows in one transaction; returns raw ids.

    Processing is not queued here (the caller does it after answering the sessions), so a
    failure to queue can never turn a committed message into a 451.
    """
    if sync == "syncfs":
        try:
            for spec in specs:
                storage.save_raw(spec.data, fsync=False)
            root = storage.raw_root()
            sync_filesystem(root)
        except OSError as e:
            raise StoreUnavailable(f"raw store not writable: {e.__class__.__name__}") from e
        # The files now exist with the right size, so store_raw_messages does not rewrite them.
        rows = store_raw_messages(specs, fsync=False, enqueue=False)
    else:
        rows = store_raw_messages(specs, fsync=True, enqueue=False)
    return [r.pk for r in rows]


class GroupCommitWriter:
    """A single writer thread committing whatever sessions have handed over, in batches."""

    def __init__(
        self,
        *,
        window_ms: float | None = None,
        max_batch: int = 500,
        sync: str | None = None,
        on_stored: Callable[[list[int]], None] | None = None,
        name: str = "mailwarden-smtp-writer",
    ) -> None:
        self.window = (
            settings.MAILWARDEN_SMTP_COMMIT_WINDOW_MS if window_ms is None else window_ms
        ) / 1000.0
        self.max_batch = max_batch
        self.sync = sync or settings.MAILWARDEN_SMTP_SYNC
        if self.sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}")
        # Called with the new raw ids after the sessions got their 250 (default: queue
        # processing). The sweeper re-queues anything this misses.
        self.on_stored = on_stored
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.batches = 0
        self.messages = 0

    def start(self) -> GroupCommitWriter:
        self._thread.start()
        return self

    def submit(self, specs: list[RawSpec]) -> Future:
        """Queue one session's message(s); the future resolves to the raw ids after commit."""
        job = _Job(list(specs))
        if not self._thread.is_alive():
            job.future.set_exception(StoreUnavailable("writer is not running"))
            return job.future
        self._queue.put(job)
        return job.future

    def stop(self, timeout: float | None = None) -> None:
        """Commit everything already submitted, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        batch = [first]
        size = len(first.specs)
        deadline = time.monotonic() + self.window
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
            size += len(item.specs)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch, stopping = self._collect(item)
            self._commit(batch)
        # Anything submitted after stop() was called is still committed, never dropped.
        leftovers = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                leftovers.append(item)
        if leftovers:
            self._commit(leftovers)
        connection.close()

    def _commit(self, batch: list[_Job]) -> None:
        limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
        ok: list[_Job] = []
        for job in batch:
            too_big = next((s for s in job.specs if len(s.data) > limit), None)
            if too_big is not None:
                job.future.set_exception(MessageTooLarge(len(too_big.data), limit))
            else:
                ok.append(job)
        if not ok:
            return
        specs = [s for job in ok for s in job.specs]
        try:
            try:
                ids = store_durably(specs, self.sync)
            except (StoreUnavailable, DbError) as e:
                if isinstance(e, StoreUnavailable) and not isinstance(e.__cause__, DbError):
                    raise  # the file store, not the connection
                # A database restart breaks the open connection: retry once on a new one.
                connection.close()
                ids = store_durably(specs, self.sync)
        except Exception as e:  # the boundary: every waiting session must get an answer
            if not isinstance(e, StoreUnavailable):
                log.exception("SMTP group commit failed for %d messages", len(specs))
                e = StoreUnavailable(f"commit failed: {e.__class__.__name__}")
            else:
                log.warning("SMTP group commit: store unavailable (%s)", e)
            # A broken connection must not poison the next batch: reconnect next time.
            try:
                connection.close()
            except Exception:
                log.debug("closing the writer's connection failed", exc_info=True)
            for job in ok:
                job.future.set_exception(e)
            return
        self.batches += 1
        self.messages += len(specs)
        start = 0
        for job in ok:
            n = len(job.specs)
            job.future.set_result(ids[start : start + n])
            start += n
        if self.on_stored is not None:
            try:
                self.on_stored(ids)
            except Exception:  # committed is committed: the sweeper will queue them later
                log.exception("queueing %d stored SMTP messages failed", len(ids))
