"""Fixtures for the SMTP listener tests: a real listener on a random loopback port."""

from __future__ import annotations

import email.policy
import re
import shutil
import smtplib
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from capture.addresses import get_or_create_capture_address
from tests.factories import make_user


def build_message(
    *, sender: str, to: str, subject: str = "hello", body: str = "Hi there.\n", **headers: str
) -> bytes:
    """A CRLF message (smtplib sends bytes as they are, RFC 5321 wants CRLF)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def listener(transactional_db, settings):
    """An in-process listener (own thread and event loop) that only stores raw mail."""
    from capture.smtp.server import start_listener_thread

    thread = start_listener_thread(host="127.0.0.1", port=0, process=False, window_ms=1)
    yield thread
    thread.stop(grace=5)


@pytest.fixture
def alice(transactional_db):
    return make_user(username="alice", email="alice@mailwarden-demo.com")


@pytest.fixture
def alice_address(alice):
    return get_or_create_capture_address(alice)


@pytest.fixture
def smtp(listener):
    """A connected smtplib client; closed after the test."""
    client = smtplib.SMTP("127.0.0.1", listener.port, timeout=30)
    client.ehlo("client.test")
    yield client
    try:
        client.quit()
    except smtplib.SMTPException:
        pass


@pytest.fixture
def make_listener(transactional_db):
    """Start extra listeners with their own options (size limit, TLS, ...); stopped after."""
    from capture.smtp.server import start_listener_thread

    started = []

    def start(**kwargs):
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        kwargs.setdefault("process", False)
        kwargs.setdefault("window_ms", 1)
        thread = start_listener_thread(**kwargs)
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop(grace=5)


REPO = __import__("pathlib").Path(__file__).resolve().parents[3]


def subprocess_env(database_url: str, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "MAILWARDEN_"))}
    env.update(
        {
            "DATABASE_URL": database_url,
            "MAILWARDEN_ENV_FILE": "/nonexistent",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class ListenerProcess:
    """`manage.py capture_smtpd --port 0` as a child process; reads the port it prints."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "manage.py"),
                "capture_smtpd",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                *args,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        for line in self.proc.stdout:
            self.output.append(line)
            found = re.search(r"listening on [^:]+:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                break
        else:
            raise RuntimeError("capture_smtpd did not start:\n" + "".join(self.output))

    def stop(self, timeout: float = 60) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = self.proc.communicate(timeout=timeout)
        except Exception:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        self.output.append(rest or "")
        return self.proc.returncode


@dataclass
class ExternalDb:
    """A database a child process can open: the PostgreSQL test database, or a migrated
    SQLite file (the in-memory SQLite test database is invisible to other processes)."""

    url: str
    sqlite_path: str | None

    def env(self, **extra: str) -> dict[str, str]:
        return subprocess_env(self.url, **extra)

    def capture_address_for(self, username: str, email: str) -> str:
        if self.sqlite_path is None:
            user = make_user(username=username, email=email)
            return get_or_create_capture_address(user).address
        code = (
            "from tests.factories import make_user;"
            "from capture.addresses import get_or_create_capture_address as g;"
            f"print(g(make_user(username={username!r}, email={email!r})).address)"
        )
        out = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "shell", "-c", code],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return out.stdout.strip().splitlines()[-1]

    def raw_count(self) -> int:
        if self.sqlite_path is None:
            from capture.models import RawMessage

            return RawMessage.objects.count()
        with sqlite3.connect(self.sqlite_path) as conn:
            return conn.execute("SELECT count(*) FROM capture_rawmessage").fetchone()[0]


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("smtp-db") / "template.sqlite3"
    subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "migrate", "--noinput", "-v0"],
        cwd=REPO,
        env=subprocess_env(f"sqlite:///{path}"),
        check=True,
        timeout=300,
    )
    return path


@pytest.fixture
def external_db(transactional_db, tmp_path, request):
    from django.db import connection

    if connection.vendor == "postgresql":
        s = connection.settings_dict
        auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
        return ExternalDb(
            f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}", None
        )
    template = request.getfixturevalue("_sqlite_template")
    path = tmp_path / "listener.sqlite3"
    shutil.copy(template, path)
    return ExternalDb(f"sqlite:///{path}", str(path))
