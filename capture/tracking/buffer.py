"""The per-process buffer between the tracking endpoints and the database (docs/governance.md,
"Tracking: recording").

A pixel or click request checks its token and classifies the user agent in memory, then hands
the event to this buffer and answers: no database round trip in the request, so a sync worker
is never held by one. A background thread (one per process, started by the first event, so a
process that never serves /t/ has none) writes what accumulated every
MAILWARDEN_TRACKING_FLUSH_SECONDS (0.2) or as soon as FLUSH_EVENTS are waiting, as one
multi-row INSERT ... SELECT that re-checks consent row by row (service.record_tracking_events).

- Fork-safe: the buffer remembers its process id; in a forked child the first event drops
  what the parent had buffered (the parent writes those) and starts the child's own thread.
- Bounded: at most MAILWARDEN_TRACKING_BUFFER_EVENTS (10,000) events wait; past that the
  oldest are dropped and counted, and the count is logged (at most once a minute), so a dead
  database cannot eat the worker's memory. A write that failed for want of the database
  (connection refused, lost, timed out) puts its events back (oldest first, the same bound)
  and the thread backs off up to 5 s; any other error drops that batch (logged), so one bad
  batch cannot block the ones after it.
- The thread has its own database connection (Django's are per thread), closed after a minute
  without events.
- Exit: an atexit hook stops the thread and writes what is left (gunicorn workers leave by
  sys.exit on SIGTERM, SIGQUIT and SIGINT; atexit runs). A worker killed outright (SIGKILL,
  OOM) loses the events of its last interval: the same class of loss as the INSERT's
  `synchronous_commit = off`.
- MAILWARDEN_TRACKING_FLUSH_SECONDS = 0 writes each event in its own request instead.
- `flush()` writes everything now, in the calling thread (on its database connection): tests
  call it to see events deterministically (tests/capture/tracking/conftest.py stops the
  thread from starting, so the test's own transaction sees the rows).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

DEFAULT_FLUSH_SECONDS = 0.2
DEFAULT_MAX_EVENTS = 10_000
FLUSH_EVENTS = 500  # write early once this many wait
MAX_BACKOFF_SECONDS = 5.0
EXIT_JOIN_SECONDS = 5.0
IDLE_CLOSE_SECONDS = 60.0  # the thread closes its connection after this long without events
_LOG_EVERY_SECONDS = 60.0

# (tracked_id, kind, link, occurred_at, machine, machine_reason, user_agent)
Event = tuple[int, str, int | None, Any, bool, str, str]


def _setting(name: str, default: float) -> float:
    """The Django setting, else the environment variable of that name, else the default."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or default
    return float(value)


def flush_seconds() -> float:
    return _setting("MAILWARDEN_TRACKING_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS)


def max_events() -> int:
    return max(1, int(_setting("MAILWARDEN_TRACKING_BUFFER_EVENTS", DEFAULT_MAX_EVENTS)))


class EventBuffer:
    """Events waiting to be written, and the thread that writes them (module docstring)."""

    def __init__(
        self,
        write: Callable[[list[Event]], int],
        retryable: Callable[[BaseException], bool] = lambda exc: True,
    ) -> None:
        self._write = write
        self._retryable = retryable
        self.background = True  # tests turn the thread off and call flush()
        self._reset()
        atexit.register(self.close)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._events: deque[Event] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # events dropped since the last time that was logged
        self.dropped_total = 0
        self._last_drop_log = 0.0
        self._last_failure_log = 0.0

    # --- the request side (cheap: a lock, an append) ------------------------------------------

    def add(self, event: Event) -> None:
        if self._pid != os.getpid():  # a forked child: the parent writes what it had
            self._reset()
        limit = max_events()
        with self._lock:
            self._events.append(event)
            over = len(self._events) - limit
            for _ in range(max(over, 0)):
                self._events.popleft()
            if over > 0:
                self.dropped += over
                self.dropped_total += over
            waiting = len(self._events)
        if over > 0:
            self._log_drops()
        if self._thread is None and self.background:
            self._start()
        if waiting >= FLUSH_EVENTS:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="mailwarden-tracking-flush", daemon=True
            )
            self._thread.start()

    def _log_drops(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log < _LOG_EVERY_SECONDS:
            return
        self._last_drop_log = now
        dropped, self.dropped = self.dropped, 0
        log.warning(
            "tracking: buffer full (%s events), dropped the %s oldest (%s in this process)",
            max_events(),
            dropped,
            self.dropped_total,
        )

    # --- the writing side ---------------------------------------------------------------------

    def _take(self) -> list[Event]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def _put_back(self, events: list[Event]) -> None:
        """A failed batch goes back in front of what arrived since (the bound still holds)."""
        limit = max_events()
        with self._lock:
            merged = events + list(self._events)
            over = max(len(merged) - limit, 0)
            self._events = deque(merged[over:])
            self.dropped += over
            self.dropped_total += over
        if over:
            self._log_drops()

    def flush(self, *, keep_on_failure: bool = True) -> int:
        """Write every waiting event now, in this thread; the number the re-check let in.
        Never raises: a failure is logged (at most once a minute) and, unless told otherwise,
        the events wait for the next try."""
        if self._pid != os.getpid():
            self._reset()
            return 0
        events = self._take()
        if not events:
            return 0
        try:
            return self._write(events)
        except Exception as exc:
            retry = keep_on_failure and self._retryable(exc)
            now = time.monotonic()
            if now - self._last_failure_log >= _LOG_EVERY_SECONDS:
                self._last_failure_log = now
                log.exception(
                    "tracking: %s events could not be written (%s)",
                    len(events),
                    "will retry" if retry else "dropped",
                )
            if retry:
                self._put_back(events)
            return -1

    def _run(self) -> None:
        from django.db import connection

        backoff = 0.0
        last_write = time.monotonic()
        try:
            while not self._stop.is_set():
                self._wake.wait(max(flush_seconds(), 0.01) + backoff)
                self._wake.clear()
                if self._stop.is_set():
                    break
                had_events = bool(self._events)
                written = self.flush()
                backoff = min(max(backoff * 2, 0.2), MAX_BACKOFF_SECONDS) if written < 0 else 0.0
                now = time.monotonic()
                if had_events:
                    last_write = now
                elif now - last_write > IDLE_CLOSE_SECONDS and connection.connection is not None:
                    connection.close()  # an idle worker holds no connection for the thread
        finally:
            connection.close()

    def close(self) -> None:
        """At exit: stop the thread (it finishes the write it is in) and write what is left."""
        if self._pid != os.getpid():
            return
        thread = self._thread
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(EXIT_JOIN_SECONDS)
            self._thread = None
        if self._events:
            self.flush(keep_on_failure=False)

    def __len__(self) -> int:
        return len(self._events)
