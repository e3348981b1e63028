"""The purge yields to capture (docs/retention.md "A purge that never slows capture"): a nicer
thread, files removed at a bounded rate while mail arrives, a rest after a busy batch. How much
that buys is bench/purge.py's to measure; these check that each mechanism acts when it should
and only then."""

from __future__ import annotations

import os
import threading

import pytest

from capture import purge
from capture.models import EmailMessage, FileDeletion, PurgeRun
from capture.purge import CaptureActivity, Pacer, drain_outbox, purge_expired, run_niced
from capture.storage import save_raws
from tests.capture.retention.helpers import capture, mail, stored_files


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_run_niced_runs_in_a_nicer_thread_and_hands_back_value_and_error(settings):
    settings.MAILWARDEN_PURGE_NICE = 5
    mine = _nice_of_this_thread()
    seen = run_niced(lambda: (threading.get_native_id(), _nice_of_this_thread()))
    assert seen[0] != threading.get_native_id()
    assert seen[1] == min(19, mine + 5)
    assert _nice_of_this_thread() == mine  # the caller's thread is left as it was

    def fails():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_niced(fails)


@pytest.mark.django_db
def test_run_niced_stays_inline_inside_a_transaction(settings):
    settings.MAILWARDEN_PURGE_NICE = 5
    # the test's transaction: a thread could not see its rows
    assert run_niced(threading.get_native_id) == threading.get_native_id()


@pytest.mark.django_db
def test_capture_activity_sees_mail_arrive():
    activity = CaptureActivity()
    assert not activity.arrived()
    capture(mail("arrives@x.example"))
    assert activity.arrived()
    assert not activity.arrived()  # only new mail counts


class FakeActivity:
    def __init__(self, busy: bool) -> None:
        self.busy = busy

    def arrived(self) -> bool:
        return self.busy


@pytest.mark.parametrize("busy", [True, False])
def test_the_pacer_sleeps_only_while_mail_arrives(monkeypatch, busy, settings):
    settings.MAILWARDEN_PURGE_BUSY_FILES_PER_SECOND = 100
    slept = []
    monkeypatch.setattr(purge.time, "sleep", slept.append)
    monkeypatch.setattr(purge, "CaptureActivity", lambda: FakeActivity(busy))
    pacer = Pacer()
    pacer.looked -= 1  # due for a look
    pacer(50)
    pacer(50)
    assert slept == ([0.5, 0.5] if busy else [])
    assert pacer.paced == (100 if busy else 0)


def test_a_rate_of_zero_never_paces(monkeypatch, settings):
    settings.MAILWARDEN_PURGE_BUSY_FILES_PER_SECOND = 0
    monkeypatch.setattr(purge, "CaptureActivity", lambda: pytest.fail("no look needed"))
    slept = []
    monkeypatch.setattr(purge.time, "sleep", slept.append)
    Pacer()(50)
    assert slept == []


@pytest.mark.django_db
def test_drain_outbox_paces_in_slices_and_removes_every_file():
    paths = [p for _, p in save_raws([f"orphan {i}".encode() for i in range(120)])]
    FileDeletion.objects.bulk_create(
        [FileDeletion(kind=FileDeletion.Kind.RAW, path=p) for p in paths]
    )
    calls = []
    assert drain_outbox(pace=calls.append) == 120
    assert calls == [50, 50, 20]
    assert not FileDeletion.objects.exists()
    assert not {f"raw:{p}" for p in paths} & stored_files()


@pytest.mark.django_db
@pytest.mark.parametrize("busy", [True, False])
def test_the_purge_rests_after_a_batch_during_which_mail_arrived(monkeypatch, settings, busy):
    settings.MAILWARDEN_RETENTION_BIN_DAYS = 0
    settings.MAILWARDEN_PURGE_BUSY_YIELD = 1.0
    for i in range(3):
        capture(mail(f"due-{i}@x.example"))
    EmailMessage.objects.update(
        expires_at="2021-01-01T00:00:00Z", expiry_action="delete", expiry_rule="only_policy"
    )
    rests = []
    real_sleep = purge.time.sleep
    monkeypatch.setattr(purge.time, "sleep", lambda s: rests.append(s) or real_sleep(0))
    monkeypatch.setattr(purge, "CaptureActivity", lambda: FakeActivity(busy))
    run = purge_expired(batch_size=1)
    assert sum(run.counts["none"].values()) == 3
    assert not EmailMessage.objects.exists()
    assert (len(rests) == 3) is busy and all(r >= 0 for r in rests)
    assert PurgeRun.objects.get(pk=run.pk).batches_ms <= run.duration_ms
