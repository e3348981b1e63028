"""The per-process event buffer (capture/tracking/buffer.py): bounded (drop-oldest, counted and
logged), fork-safe, a failed write kept for the next try, the thread writes on its own and the
rest is written at close (exit); with MAILWARDEN_TRACKING_FLUSH_SECONDS = 0 the request writes."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime

import pytest
from django.test import Client

from capture.models import TrackedMessage, TrackingEvent
from capture.tracking import buffer as buffer_module
from capture.tracking.buffer import EventBuffer
from capture.tracking.service import EVENTS
from tests.capture.tracking.test_real_server import make_tokens


def event(n: int) -> tuple:
    return (n, "open", None, datetime.now(UTC), False, "", "agent")


class Sink:
    """A write function that keeps what it is given (and can be told to fail)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple]] = []
        self.fail = False
        self.got = threading.Event()

    def __call__(self, events):
        if self.fail:
            raise RuntimeError("database down")
        self.batches.append(list(events))
        self.got.set()
        return len(events)

    @property
    def ids(self) -> list[int]:
        return [e[0] for batch in self.batches for e in batch]


@pytest.fixture
def sink():
    return Sink()


@pytest.fixture
def manual(sink):
    buf = EventBuffer(sink)
    buf.background = False
    return buf


def test_a_full_buffer_drops_the_oldest_and_logs_the_count(manual, sink, settings, caplog):
    settings.MAILWARDEN_TRACKING_BUFFER_EVENTS = 3
    with caplog.at_level(logging.WARNING, logger=buffer_module.__name__):
        for n in range(5):
            manual.add(event(n))
    assert (len(manual), manual.dropped_total) == (3, 2)
    assert "dropped the 1 oldest" in caplog.text  # the first drop is logged, then once a minute
    assert manual.flush() == 3
    assert sink.ids == [2, 3, 4]


def test_a_failed_write_keeps_the_events_for_the_next_try(manual, sink, settings, caplog):
    """(A write that fails for want of the database; test_endpoints.py has a bad batch.)"""
    settings.MAILWARDEN_TRACKING_BUFFER_EVENTS = 4
    manual.add(event(1))
    manual.add(event(2))
    sink.fail = True
    with caplog.at_level(logging.ERROR, logger=buffer_module.__name__):
        assert manual.flush() == -1  # never raises
    assert "could not be written" in caplog.text
    for n in (3, 4, 5):
        manual.add(event(n))
    sink.fail = False
    assert manual.flush() == 4  # the bound holds: the oldest kept event went
    assert (sink.ids, manual.dropped_total) == ([2, 3, 4, 5], 1)


def test_a_forked_child_drops_what_its_parent_buffered(manual):
    manual.add(event(1))
    pid = os.fork()
    if pid == 0:  # the child: its first event forgets the parent's
        try:
            manual.add(event(2))
            code = 0 if [e[0] for e in manual._events] == [2] else 1
        finally:
            os._exit(code if "code" in locals() else 2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [e[0] for e in manual._events] == [1]  # the parent still has its own


def test_the_thread_writes_on_its_own_and_close_writes_the_rest(sink, settings):
    settings.MAILWARDEN_TRACKING_FLUSH_SECONDS = 0.05
    buf = EventBuffer(sink)
    buf.add(event(1))
    assert buf._thread is not None and buf._thread.daemon
    assert sink.got.wait(30), "the thread never wrote"  # bounded wait, not a timing assertion
    settings.MAILWARDEN_TRACKING_FLUSH_SECONDS = 3600  # the thread sleeps: only close writes
    buf._wake.set()  # let it pick up the new interval
    buf.add(event(2))
    buf.close()
    assert buf._thread is None
    assert sorted(sink.ids) == [1, 2]


@pytest.mark.django_db
def test_with_flush_seconds_zero_the_request_writes_the_event(sender, settings):
    from django.utils import timezone

    settings.MAILWARDEN_TRACKING_FLUSH_SECONDS = 0
    settings.MAILWARDEN_TRACKING_MACHINE_SECONDS = 0
    tracked = TrackedMessage.objects.create(
        message_id="now@ourco.test",
        sender=sender,
        mode="anonymous",
        links=["https://example.org/x"],
        expires_at=timezone.now() + timezone.timedelta(days=1),
    )
    pixel, _ = make_tokens(tracked.pk)
    assert Client(HTTP_USER_AGENT="Thunderbird/128.0").get(pixel).status_code == 200
    assert len(EVENTS) == 0
    assert TrackingEvent.objects.filter(tracked=tracked, kind="open").count() == 1


@pytest.mark.postgres  # Django never closes SQLite's in-memory test database
@pytest.mark.django_db(transaction=True)
def test_an_idle_thread_closes_its_database_connection(settings, monkeypatch):
    """The thread's connection (its own: Django's are per thread) is closed once no event came
    for IDLE_CLOSE_SECONDS (0 here), so an idle worker holds none."""
    from django.db import connection, connections

    wrapper = type(connections["default"])
    used = []
    closed = threading.Event()

    def write(events):
        connection.ensure_connection()
        used.append(connections["default"])
        return len(events)

    real_close = wrapper.close

    def spy_close(self):
        real_close(self)
        if used and self is used[0]:
            closed.set()

    monkeypatch.setattr(buffer_module, "IDLE_CLOSE_SECONDS", 0.0)
    monkeypatch.setattr(wrapper, "close", spy_close)
    settings.MAILWARDEN_TRACKING_FLUSH_SECONDS = 0.02
    buf = EventBuffer(write)
    buf.add(event(1))
    assert closed.wait(30), "the idle thread kept its connection"
    assert used[0] is not connections["default"]  # not the test's own
    assert used[0].connection is None
    buf.close()
