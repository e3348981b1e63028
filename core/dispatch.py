"""Where work goes to be done: Celery tasks queued by name, so no service imports a task.

A service says what should happen (`send("capture.process_raw_batch", ids)`); which code runs
it is the worker's business. With a broker, `send` queues the task by name (`send_task`).
Without one (the embedded mode, tests, management commands) it runs the task in this process:
each app registers its tasks here at start-up (`AppConfig.ready` calls `register_local`), so
nothing imports a task module to queue work. `start_local_worker` (`run_embedded`,
`capture_smtpd` without a broker) moves chosen tasks to a background thread.

Generic (Celery and Django settings only): every app may call it (docs/architecture.md,
"Layers").
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from celery import current_app
from django.conf import settings

log = logging.getLogger(__name__)

_local_tasks: dict[str, Any] = {}
_threaded: frozenset[str] = frozenset()
_local_queue: stdlib_queue.Queue[tuple[str, tuple[Any, ...]]] | None = None
_local_thread: threading.Thread | None = None


def register_local(*tasks: Any) -> None:
    """Register Celery tasks (anything with `.name` and `.apply`) to run in-process without a broker."""
    for task in tasks:
        _local_tasks[task.name] = task


def uses_broker() -> bool:
    """True when tasks go to a Celery broker; false in the embedded mode and eager tests."""
    return bool(settings.CELERY_BROKER_URL) and not current_app.conf.task_always_eager


def send(name: str, *args: Any) -> None:
    """Queue the task `name` with JSON-serialisable `args`, or run it here without a broker."""
    if uses_broker():
        current_app.send_task(name, args=list(args))
        return
    if _local_queue is not None and name in _threaded:
        _local_queue.put((name, args))
        return
    run_local(name, *args)


def run_local(name: str, *args: Any) -> Any:
    """Run a registered task in this process as Celery's eager mode does (its errors are
    logged, not raised, unless CELERY_TASK_EAGER_PROPAGATES)."""
    task = _local_tasks.get(name)
    if task is None:
        raise LookupError(f"no task named {name!r} is registered to run in-process")
    return task.apply(args=args).result


def on_commit_send(name: str, *args: Any) -> Callable[[], None]:
    """A callable for `transaction.on_commit` that sends the task after the commit."""
    return lambda: send(name, *args)


def start_local_worker(task_names: Sequence[str]) -> None:
    """Run these tasks in a background thread of this process from now on (idempotent)."""
    global _local_queue, _local_thread, _threaded
    _threaded = frozenset(task_names)
    if _local_thread is not None and _local_thread.is_alive():
        return
    work: stdlib_queue.Queue[tuple[str, tuple[Any, ...]]] = stdlib_queue.Queue()

    def run() -> None:
        from django.db import close_old_connections

        while True:
            name, args = work.get()
            close_old_connections()
            try:
                run_local(name, *args)
            except Exception:  # the boundary: never let the worker thread die
                log.exception("in-process task %s failed", name)

    _local_queue = work
    _local_thread = threading.Thread(target=run, name="mailwarden-local-worker", daemon=True)
    _local_thread.start()
