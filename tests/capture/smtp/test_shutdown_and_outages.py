"""Nothing accepted is lost: store outages answer 451 4.3.0, SIGTERM drains sessions in DATA."""

from __future__ import annotations

import smtplib
import socket

import pytest

from capture.models import RawMessage
from tests.capture.smtp.conftest import ListenerProcess, build_message, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_database_answers_451_430(tmp_path):
    env = subprocess_env(
        f"postgres://postgres@127.0.0.1:{_closed_port()}/mailwarden",
        MAILWARDEN_MEDIA_ROOT=str(tmp_path / "media"),
        MAILWARDEN_VAR_DIR=str(tmp_path),
    )
    proc = ListenerProcess(env)
    try:
        with smtplib.SMTP("127.0.0.1", proc.port, timeout=60) as client:
            client.ehlo("t")
            client.mail("alice@mailwarden-demo.com")
            code, msg = client.rcpt("log+0123456789abcdef01234567@capture.localhost")
    finally:
        assert proc.stop() == 0, "".join(proc.output)
    assert (code, msg[:5]) == (451, b"4.3.0")


def test_an_unwritable_raw_store_answers_451_430_and_the_retry_is_stored(
    smtp, settings, tmp_path, alice, alice_address
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the raw store's directory should be")
    good = settings.MAILWARDEN_RAW_STORAGE_DIR
    settings.MAILWARDEN_RAW_STORAGE_DIR = blocker / "raw"
    data = build_message(sender=alice.email, to="bob@example.com")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail(alice.email, [alice_address.address], data)
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (451, b"4.3.0")
    assert not RawMessage.objects.exists()
    settings.MAILWARDEN_RAW_STORAGE_DIR = good
    assert smtp.sendmail(alice.email, [alice_address.address], data) == {}
    assert RawMessage.objects.count() == 1


@pytest.mark.postgres
def test_after_a_database_restart_the_next_message_is_stored_without_a_451(
    smtp, alice, alice_address
):
    from django.db import connection

    data = build_message(sender=alice.email, to="bob@example.com")
    assert smtp.sendmail(alice.email, [alice_address.address], data) == {}
    # What a PostgreSQL restart does to open connections: the server ends them all.
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cur.fetchone()[0] >= 2  # the writer's and at least one lookup thread's
    second = build_message(sender=alice.email, to="bob@example.com", subject="second")
    assert smtp.sendmail(alice.email, [alice_address.address], second) == {}
    assert RawMessage.objects.count() == 2


def _reply(f) -> tuple[int, bytes]:
    while True:
        line = f.readline()
        if not line:
            return 0, b""
        if line[3:4] != b"-":
            return int(line[:3]), line[4:].strip()


def test_sigterm_lets_a_message_in_data_finish_and_stores_it(external_db, tmp_path):
    address = external_db.capture_address_for("alice", "alice@mailwarden-demo.com")
    env = external_db.env(
        MAILWARDEN_MEDIA_ROOT=str(tmp_path / "media"),
        MAILWARDEN_VAR_DIR=str(tmp_path),
        MAILWARDEN_SMTP_SHUTDOWN_GRACE_SECONDS="60",
    )
    proc = ListenerProcess(env, "--no-process")
    data = build_message(sender="alice@mailwarden-demo.com", to="bob@example.com")
    try:
        busy = socket.create_connection(("127.0.0.1", proc.port), timeout=60)
        idle = socket.create_connection(("127.0.0.1", proc.port), timeout=60)
        bf, idf = busy.makefile("rb"), idle.makefile("rb")
        assert _reply(bf)[0] == 220 and _reply(idf)[0] == 220
        idle.sendall(b"EHLO idle.test\r\n")
        assert _reply(idf)[0] == 250
        for cmd, want in (
            (b"EHLO busy.test", 250),
            (b"MAIL FROM:<alice@mailwarden-demo.com>", 250),
            (f"RCPT TO:<{address}>".encode(), 250),
            (b"DATA", 354),
        ):
            busy.sendall(cmd + b"\r\n")
            assert _reply(bf)[0] == want, cmd
        half = len(data) // 2
        busy.sendall(data[:half])

        proc.proc.send_signal(__import__("signal").SIGTERM)
        # The idle session is told to go away (421) and closed.
        assert _reply(idf)[0] == 421
        # New connections are refused once shutdown started.
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", proc.port), timeout=5).close()
            except ConnectionRefusedError:
                break
            __import__("time").sleep(0.05)
        else:
            pytest.fail("the listener kept accepting connections after SIGTERM")
        # The session in DATA finishes and gets its 250 only after the commit.
        busy.sendall(data[half:] + b".\r\n")
        code, text = _reply(bf)
        assert code == 250, text
        busy.close()
        idle.close()
    finally:
        rc = proc.stop()
    assert rc == 0, "".join(proc.output)
    assert external_db.raw_count() == 1
