"""`manage.py run_embedded` starts the listener and prints working test commands."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys

import pytest

from core.dispatch import run_local
from core.schedules import declared_schedules
from tests.capture.smtp.conftest import REPO

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_declared_schedule_runs_in_process_without_a_broker():
    tasks = {spec.task for spec in declared_schedules()}
    assert {"governance.seal_audit", "capture.sweep_pending", "capture.sync_due_mailboxes"} <= tasks
    for task in tasks:  # what run_embedded's periodic thread does; raises if one is unregistered
        run_local(task)


def test_run_embedded_prints_each_users_address_and_the_printed_command_delivers(
    external_db, tmp_path
):
    address = external_db.capture_address_for("alice", "alice@mailwarden-demo.com")
    env = external_db.env(
        MAILWARDEN_MEDIA_ROOT=str(tmp_path / "media"), MAILWARDEN_VAR_DIR=str(tmp_path)
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "run_embedded", "--no-web", "--smtp-port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        python_cmd = None
        for line in proc.stdout:
            lines.append(line)
            if line.strip().startswith("python -c"):
                python_cmd = line.strip()
                break
        assert python_cmd, "".join(lines)
        text = "".join(lines)
        assert f"alice: {address}" in text
        assert re.search(
            r"swaks --server 127\.0\.0\.1:\d+ --from alice@mailwarden-demo.com --to "
            + re.escape(address),
            text,
        )
        argv = shlex.split(python_cmd)
        argv[0] = sys.executable
        sent = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert external_db.raw_count() == 1
