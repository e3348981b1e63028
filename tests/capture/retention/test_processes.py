"""Real purge processes (`manage.py purge_expired`) on the test database: two at once act on
each due row exactly once; one killed with SIGKILL mid-batch leaves, after the next run, no
orphan file and no missing referenced file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test import override_settings

from capture.models import EmailMessage, FileDeletion, PurgeRun
from capture.purge import purge_expired
from capture.retention import recompute
from governance.models import AuditEvent
from tests.capture.retention.helpers import capture, mail, policy, referenced_files, stored_files
from tests.filestore import store_env

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[3]
SHARED = b"%PDF-1.4 shared price list"


def _env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db.get("PASSWORD"):
        url = url.replace("@", f":{db['PASSWORD']}@", 1)
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_CONN_MAX_AGE": "0",
        **store_env(),  # local folders or the S3 bucket of this test (--file-store)
        "CELERY_BROKER_URL": "",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _purger(**extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "purge_expired", "--batch-size", "8", "--no-progress"],
        cwd=REPO,
        env=_env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _mail_with_files(n_due: int, n_kept: int) -> tuple[set[int], set[int]]:
    """Due messages (2020) and kept ones (today), each with its own attachment, every third
    also sharing one attachment with a kept message: that blob must stay."""
    due, kept = set(), set()
    for i in range(n_due):
        data = mail(
            f"due-{i}@x.example", subject=f"Due {i}", attachment=f"%PDF-1.4 own {i}".encode()
        )
        if i % 3 == 0:
            data = mail(f"due-{i}@x.example", subject=f"Due {i}", attachment=SHARED)
        due.add(capture(data).pk)
    now = datetime.now(UTC)
    for i in range(n_kept):
        kept.add(
            capture(
                mail(f"kept-{i}@x.example", subject=f"Kept {i}", date=now, attachment=SHARED)
            ).pk
        )
    policy("delete after 30 days", duration_days=30)
    recompute()
    assert set(EmailMessage.objects.filter(expires_at__lte=now).values_list("pk", flat=True)) == due
    return due, kept


def _acted_ids() -> list[int]:
    ids: list[int] = []
    for detail in AuditEvent.objects.filter(action="retention.delete").values_list(
        "detail", flat=True
    ):
        ids += detail["messages"]
    return ids


@pytest.mark.postgres
def test_two_purge_processes_act_on_each_due_row_exactly_once():
    due, kept = _mail_with_files(48, 2)
    files_before = stored_files()
    with transaction.atomic(), connection.cursor() as cur:
        # A barrier: both processes block on their first write until both have started.
        cur.execute(f"LOCK TABLE {PurgeRun._meta.db_table} IN EXCLUSIVE MODE")
        workers = [
            _purger(MAILWARDEN_RETENTION_BIN_DAYS="0", MAILWARDEN_RETENTION_PAUSE_MS="150")
            for _ in range(2)
        ]
        deadline = time.monotonic() + 120
        while True:
            cur.execute("SELECT pg_stat_clear_snapshot()")  # a transaction sees one snapshot
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if cur.fetchone()[0] >= 2:
                break
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            assert time.monotonic() < deadline, "the purge processes never reached the database"
            time.sleep(0.05)
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    acted = _acted_ids()
    assert sorted(acted) == sorted(due)  # each due row exactly once, none twice
    runs = list(PurgeRun.objects.all())
    assert len(runs) == 2
    per_run = [sum(n for by in r.counts.values() for n in by.values()) for r in runs]
    assert sum(per_run) == len(due)
    assert all(n > 0 for n in per_run), per_run  # the work was shared
    assert set(EmailMessage.objects.values_list("pk", flat=True)) == kept
    assert not FileDeletion.objects.exists()
    assert stored_files() == referenced_files()
    assert stored_files() < files_before


@pytest.mark.postgres
def test_a_purge_killed_mid_batch_leaves_no_orphan_and_no_missing_file_after_the_next_run():
    due, kept = _mail_with_files(30, 2)
    # Killed in the window between a batch's commit and its file removal: rows gone, files
    # still there and named in the outbox.
    worker = _purger(MAILWARDEN_RETENTION_BIN_DAYS="0", MAILWARDEN_RETENTION_PAUSE_MS="60000")
    line = worker.stdout.readline()
    assert line.startswith("batch 1 committed"), (
        line,
        worker.stderr.read() if worker.poll() is not None else "",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    pending = set(FileDeletion.objects.values_list("path", flat=True))
    assert pending and stored_files() - referenced_files()  # orphans, for now
    # Killed at an arbitrary point of a later batch.
    worker = _purger(MAILWARDEN_RETENTION_BIN_DAYS="0")
    worker.stdout.readline()
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=60)
    assert stored_files() >= referenced_files()  # nothing referenced was ever lost
    with override_settings(MAILWARDEN_RETENTION_BIN_DAYS=0):
        purge_expired()
    assert not FileDeletion.objects.exists()
    assert stored_files() == referenced_files()
    assert set(EmailMessage.objects.values_list("pk", flat=True)) == kept
    assert sorted(set(_acted_ids())) == sorted(due)
    assert len(_acted_ids()) == len(due)
