"""The Procfile as production runs it: `honcho start` brings up web, worker, beat and the SMTP
listener against PostgreSQL and Redis, mail sent to the listener is processed by the worker,
and SIGTERM stops every process they started (README.md "Running in production")."""

from __future__ import annotations

import email.policy
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from capture.addresses import get_or_create_capture_address
from capture.models import RawMessage
from tests.factories import make_user

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PROCESSES = ("web", "worker", "beat", "listener")
START_TIMEOUT = 180  # four Django processes starting on a busy two-core machine
PROCESS_TIMEOUT = 60
STOP_TIMEOUT = 60
# A honcho line without colour: "12:00:00 web.1    | text".
LINE = re.compile(r"^\S+ (?P<name>[\w-]+)(?:\.\d+)?\s+\| (?P<text>.*)$")
# What each process prints once it is ready; the group is the port where there is one.
READY = {
    "web": re.compile(r"Listening at: http://[^\s:]+:(\d+)"),
    "worker": re.compile(r"celery@\S+ ready\."),
    "beat": re.compile(r"beat: Starting\.\.\."),
    "listener": re.compile(r"capture_smtpd listening on [^\s:]+:(\d+)"),
}


class Honcho:
    """`honcho start -f Procfile` in its own process group, its output collected by a thread.

    Every process it starts inherits a marker in its environment, so the test can find them
    all afterwards, whatever session or process group each was put in.
    """

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.marker = f"MAILWARDEN_PROCFILE_TEST_RUN={uuid.uuid4().hex}"
        key, value = self.marker.split("=", 1)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "honcho"), "--no-colour", "start", "-f", str(REPO / "Procfile"),
             "-d", str(REPO), "-e", str(cwd / "absent.env"), "-p", "0"],
            cwd=REPO, env={**env, key: value}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def lines_of(self, name: str) -> list[str]:
        with self._changed:
            found = [LINE.match(line) for line in self.lines]
        return [m["text"] for m in found if m and m["name"] == name]

    def wait_for_line(self, name: str, pattern: re.Pattern[str], deadline: float) -> re.Match:
        """The first line of process `name` matching `pattern`; fails if honcho stops first."""
        with self._changed:
            while True:
                for line in self.lines:
                    m = LINE.match(line)
                    if m and m["name"] == name and (found := pattern.search(m["text"])):
                        return found
                if self.proc.poll() is not None and not self._reader.is_alive():
                    pytest.fail(f"honcho stopped before {name} was ready:\n{self.output()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} did not get ready in time:\n{self.output()}")
                self._changed.wait(timeout=1)

    def reported_pids(self) -> dict[str, int]:
        """The pid honcho printed for each Procfile process it started."""
        found = re.finditer(r"system\s+\| ([\w-]+)\.1 started \(pid=(\d+)\)", self.output())
        return {m[1]: int(m[2]) for m in found}

    def started_pids(self) -> list[int]:
        """Every live process carrying this run's marker (zombies have no environment)."""
        needle = self.marker.encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or not ours
                continue
            if needle in environ.split(b"\0") and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
        return pids

    def stop(self) -> int:
        """SIGTERM to honcho, which passes it on to every process; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        finally:
            self._reader.join(timeout=10)

    def kill_everything(self) -> None:
        """The safety net: SIGKILL honcho's group and whatever it left running."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in self.started_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def database_url() -> str:
    """The test database pytest-django created, for the processes honcho starts."""
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def procfile_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """A production-like environment: debug off, PostgreSQL, Redis, its own media and var."""
    inherited = ("DATABASE_URL", "MAILWARDEN_", "CELERY_", "DJANGO_", "PORT", "WEB_CONCURRENCY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "MAILWARDEN_ENV_FILE": str(tmp_path / "absent.env"),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": redis_url,
            "MAILWARDEN_CACHE_URL": redis_url,
            "MAILWARDEN_VAR_DIR": str(tmp_path / "var"),
            "MAILWARDEN_MEDIA_ROOT": str(tmp_path / "media"),
            # Loopback and ports the kernel picks (read back from the output): no clash with
            # anything else on the machine.
            "MAILWARDEN_WEB_HOST": "127.0.0.1",
            "MAILWARDEN_SMTP_HOST": "127.0.0.1",
            "MAILWARDEN_SMTP_PORT": "0",
            "WEB_CONCURRENCY": "1",
        }
    )
    return env


def wait_for_healthz(port: int, honcho: Honcho, deadline: float) -> None:
    url = f"http://127.0.0.1:{port}/healthz"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline or honcho.proc.poll() is not None:
            pytest.fail(f"web never answered {url} with 200:\n{honcho.output()}")
        time.sleep(0.2)


def build_message(sender: str, subject: str) -> bytes:
    """A mail to a customer; the capture address is only an envelope recipient (a BCC)."""
    msg = EmailMessage(policy=email.policy.SMTP)  # CRLF line ends, as SMTP wants
    msg["From"] = sender
    msg["To"] = "Pat Buyer <pat@acme-widgets.com>"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@mailwarden-demo.com>"
    msg.set_content("Hello Pat,\n\nhere is the quote we discussed.\n")
    return msg.as_bytes()


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_honcho_runs_the_procfile_and_mail_sent_to_the_listener_is_processed_by_the_worker(
    tmp_path, redis_url
):
    sam = make_user(username="sam", email="sam@mailwarden-demo.com")
    capture_address = get_or_create_capture_address(sam)
    address = capture_address.address
    subject = f"Quote {uuid.uuid4().hex[:8]}"

    honcho = Honcho(procfile_env(tmp_path, redis_url), tmp_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        ready = {name: honcho.wait_for_line(name, READY[name], deadline) for name in PROCESSES}
        wait_for_healthz(int(ready["web"][1]), honcho, deadline)

        with smtplib.SMTP("127.0.0.1", int(ready["listener"][1]), timeout=30) as client:
            refused = client.sendmail(sam.email, [address], build_message(sam.email, subject))
        assert refused == {}

        deadline = time.monotonic() + PROCESS_TIMEOUT
        raw = RawMessage.objects.get(capture_address=capture_address)
        while raw.status == RawMessage.Status.PENDING and time.monotonic() < deadline:
            time.sleep(0.2)
            raw.refresh_from_db()
        assert raw.status == RawMessage.Status.PROCESSED, (
            raw.status,
            raw.reason_code,
            honcho.output(),
        )
        assert raw.email.subject == subject
        assert any(
            "django_celery_beat.schedulers.DatabaseScheduler" in line
            for line in honcho.lines_of("beat")
        ), honcho.output()
        # The worker logs the task's success after its commit: wait for the line (bounded).
        honcho.wait_for_line(
            "worker", re.compile(r"capture\.process_raw_batch\[[^\]]+\] succeeded"), deadline
        )

        running = honcho.started_pids()
        returncode = honcho.stop()
        left = honcho.started_pids()
        honcho_group_gone = group_is_gone(honcho.proc.pid)
    finally:
        honcho.kill_everything()

    out = honcho.output()
    # the marker finds what honcho started (else the check below could not fail)
    assert set(honcho.reported_pids()) == set(PROCESSES), out
    assert set(honcho.reported_pids().values()) <= set(running), out
    assert left == [], f"still running after honcho stopped: {left}\n{out}"
    assert honcho_group_gone, out
    assert returncode == 128 + signal.SIGTERM, out  # honcho's answer to SIGTERM: all stopped
    for name in PROCESSES:
        assert re.search(rf"system\s+\| {name}\.1 stopped", out), out
