"""Group commit for the SMTP listener: one writer pipeline, many waiting sessions.

fsync costs milliseconds, so committing each message alone caps the listener at a few
hundred messages per second. Sessions hand their message to `GroupCommitWriter.submit`;
the writer thread takes everything that arrived while the previous batch was committing
(plus a window of a few ms), makes the raw files durable, writes all rows in ONE
transaction (`capture.intake.store_raw_messages`) and only then resolves each session's
future, which is when the session answers 250. A failed batch fails every future in it
(the sessions answer 451 and the clients retry); nothing is acknowledged before commit.
The work is split over two threads (files, then rows) so the two flushes of consecutive
batches overlap.

Durability modes (`sync`):
- "syncfs": write all files without fsync, then one syncfs(2) on the raw store's file
  system (falls back to os.sync()), then the transaction. One flush per batch.
- "fsync": fsync each file as it is written (store_raw_messages' default).
Either way the files are on disk before the rows that name them are committed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import Error as DbError
from django.db import connection

from capture import storage
from capture.errors import MessageTooLarge, StoreUnavailable
from capture.intake import RawSpec, store_raw_messages

log = logging.getLogger(__name__)

_STOP = object()
SYNC_MODES = ("syncfs", "fsync")


@dataclass
class _Job:
    """One submission: a thread waits on `future`; a session on an event loop waits on
    `afuture` (resolved on its loop, see _settle)."""

    specs: list[RawSpec]
    future: Future | None = None
    loop: asyncio.AbstractEventLoop | None = None
    afuture: asyncio.Future | None = None


def _resolve_on_loop(items: list[tuple[asyncio.Future, Any]]) -> None:
    for fut, outcome in items:
        if fut.done():  # the session went away (cancelled) while it waited
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def _settle(done: list[tuple[_Job, Any]]) -> None:
    """Give each job its outcome (raw ids or an exception).

    Sessions waiting on one event loop are woken with ONE call_soon_threadsafe for the whole
    batch: a wake-up per message (what asyncio.wrap_future does) cost the loop measurably
    more than the sessions' own work in bench/smtp_accept.py.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}
    for job, outcome in done:
        if job.loop is not None and job.afuture is not None:
            by_loop.setdefault(job.loop, []).append((job.afuture, outcome))
        elif job.future is not None:
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_on_loop, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("event loop closed before %d sessions got their answer", len(items))


Paths = list[tuple[str, str]]


def write_files_durably(specs: Sequence[RawSpec], sync: str = "syncfs") -> Paths:
    """Stage 1: put every file of the batch on disk (one syncfs, or fsync per file);
    returns (sha256, relative path) per spec."""
    try:
        fsync = sync == "fsync"
        paths = storage.save_raws([spec.data for spec in specs], fsync=fsync)
        # fsync: the directory entries too (a file's fsync does not cover its new name).
        storage.flush_raws([rel for _, rel in paths], fsync=fsync)
    except (OSError, DbError) as e:  # DbError: the data keys of encrypted files
        if isinstance(e, DbError):
            connection.close()  # this thread's connection: the next batch opens a new one
        raise StoreUnavailable(f"raw store not writable: {e.__class__.__name__}") from e
    return paths


def commit_rows(specs: Sequence[RawSpec], paths: Paths) -> list[int]:
    """Stage 2: all rows in one transaction; returns raw ids. `paths` are already durable.

    Processing is not queued here (the caller does it after answering the sessions), so a
    failure to queue can never turn a committed message into a 451. A database restart
    breaks the open connection: retry once on a new one.
    """
    try:
        rows = store_raw_messages(specs, enqueue=False, paths=paths)
    except (StoreUnavailable, DbError) as e:
        if isinstance(e, StoreUnavailable) and not isinstance(e.__cause__, DbError):
            raise  # the file store, not the connection
        connection.close()
        rows = store_raw_messages(specs, enqueue=False, paths=paths)
    return [r.pk for r in rows]


def store_durably(specs: Sequence[RawSpec], sync: str = "syncfs") -> list[int]:
    """Both stages in a row (for callers without the pipeline); returns raw ids."""
    return commit_rows(specs, write_files_durably(specs, sync))


class GroupCommitWriter:
    """Group commit in a pipeline: while database threads commit batch N,
    the file thread writes and flushes batch N+1. Rows are only ever committed after their
    files are on disk, and a session's future resolves only after its rows are committed."""

    def __init__(
        self,
        *,
        window_ms: float | None = None,
        max_batch: int = 500,
        sync: str | None = None,
        on_stored: Callable[[list[int]], None] | None = None,
        db_threads: int = 3,
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
        # A few database threads commit batches side by side: PostgreSQL flushes the WAL
        # of concurrent commits together, so this multiplies commits per fsync. The bounded
        # queue is the backpressure when the database is the slow stage.
        self._db_queue: queue.Queue = queue.Queue(maxsize=db_threads)
        self._thread = threading.Thread(target=self._run_files, name=f"{name}-files", daemon=True)
        self._db_threads = [
            threading.Thread(target=self._run_db, name=f"{name}-db{i}", daemon=True)
            for i in range(max(1, db_threads))
        ]
        self._count_lock = threading.Lock()
        self.batches = 0
        self.messages = 0

    def start(self) -> GroupCommitWriter:
        for t in self._db_threads:
            t.start()
        self._thread.start()
        return self

    def submit(self, specs: list[RawSpec]) -> Future:
        """Queue one message's row(s) from a thread; the future resolves to the raw ids after
        commit (or to the exception that made the commit fail)."""
        job = _Job(list(specs), future=Future())
        self._enqueue(job)
        assert job.future is not None
        return job.future

    def submit_async(self, specs: list[RawSpec]) -> asyncio.Future:
        """The same from a coroutine: an asyncio future on the running loop."""
        loop = asyncio.get_running_loop()
        job = _Job(list(specs), loop=loop, afuture=loop.create_future())
        self._enqueue(job)
        assert job.afuture is not None
        return job.afuture

    def _enqueue(self, job: _Job) -> None:
        if not self._thread.is_alive():
            if job.afuture is not None:
                job.afuture.set_exception(StoreUnavailable("writer is not running"))
            else:
                _settle([(job, StoreUnavailable("writer is not running"))])
            return
        self._queue.put(job)

    def stop(self, timeout: float | None = None) -> None:
        """Commit everything already submitted, then end both threads."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        for t in self._db_threads:
            t.join(timeout)

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

    def _run_files(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch, stopping = self._collect(item)
            self._write(batch)
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
            self._write(leftovers)
        for _ in self._db_threads:
            self._db_queue.put(_STOP)

    def _write(self, batch: list[_Job]) -> None:
        limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
        ok: list[_Job] = []
        refused: list[tuple[_Job, Any]] = []
        for job in batch:
            too_big = next((s for s in job.specs if len(s.data) > limit), None)
            if too_big is not None:
                refused.append((job, MessageTooLarge(len(too_big.data), limit)))
            else:
                ok.append(job)
        _settle(refused)
        if not ok:
            return
        try:
            paths = write_files_durably([s for job in ok for s in job.specs], self.sync)
        except Exception as e:  # the boundary: every waiting session must get an answer
            self._fail(ok, e)
            return
        self._db_queue.put((ok, paths))

    def _run_db(self) -> None:
        while True:
            item = self._db_queue.get()
            if item is _STOP:
                break
            self._commit(*item)
        connection.close()

    def _fail(self, jobs: list[_Job], e: Exception) -> None:
        n = sum(len(job.specs) for job in jobs)
        if isinstance(e, StoreUnavailable):
            log.warning("SMTP group commit of %d messages: store unavailable (%s)", n, e)
        else:
            log.exception("SMTP group commit failed for %d messages", n)
            e = StoreUnavailable(f"commit failed: {e.__class__.__name__}")
        _settle([(job, e) for job in jobs])

    def _commit(self, batch: list[_Job], paths: Paths) -> None:
        specs = [s for job in batch for s in job.specs]
        try:
            ids = commit_rows(specs, paths)
        except Exception as e:  # the boundary: every waiting session must get an answer
            try:
                connection.close()  # a broken connection must not poison the next batch
            except Exception:
                log.debug("closing the writer's connection failed", exc_info=True)
            self._fail(batch, e)
            return
        with self._count_lock:
            self.batches += 1
            self.messages += len(specs)
        done: list[tuple[_Job, Any]] = []
        start = 0
        for job in batch:
            n = len(job.specs)
            done.append((job, ids[start : start + n]))
            start += n
        _settle(done)
        if self.on_stored is not None:
            try:
                self.on_stored(ids)
            except Exception:  # committed is committed: the sweeper will queue them later
                log.exception("queueing %d stored SMTP messages failed", len(ids))
