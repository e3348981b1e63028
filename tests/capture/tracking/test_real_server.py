"""The tracking endpoints through the real WSGI server (gunicorn, as the Procfile starts it):
an open is recorded in PostgreSQL, and with the database down the pixel and the redirect are
still answered (never a 500)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from capture.models import TrackedMessage, TrackingEvent
from capture.tracking import tokens
from capture.tracking.views import PIXEL

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[3]
GUNICORN = Path(sys.executable).parent / "gunicorn"
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start_gunicorn(database_url: str, **extra_env: str) -> tuple[subprocess.Popen, int]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **extra_env,
    }
    proc = subprocess.Popen(
        [str(GUNICORN), "config.wsgi", "--bind", "127.0.0.1:0", "--workers", "1",
         "--no-control-socket", "--access-logfile", "-"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    lines = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := LISTENING.search(line):
            # keep reading the output so the server never blocks on a full pipe
            import threading

            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, int(m[1])
    proc.kill()
    pytest.fail("gunicorn did not start:\n" + "".join(lines))


def fetch(port: int, path: str) -> tuple[int, bytes, dict]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"User-Agent": "Mozilla/5.0 (X11) Firefox/130.0"}
    )
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def make_tokens(tracked_id: int) -> tuple[str, str]:
    issued = int(time.time()) - 3600  # not "too soon"
    until = issued + 86400
    return (
        f"/t/o/{tokens.make_open_token(tracked_id, issued, until)}",
        f"/t/c/{tokens.make_click_token(tracked_id, issued, until, 0, 'https://example.org/x')}",
    )


def tracked_message(sender, message_id: str) -> TrackedMessage:
    from django.utils import timezone

    return TrackedMessage.objects.create(
        message_id=message_id,
        sender=sender,
        mode="anonymous",
        links=["https://example.org/x"],
        expires_at=timezone.now() + timezone.timedelta(days=1),
        issued_at=timezone.now() - timezone.timedelta(hours=1),
    )


def database_url() -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def wait_for_events(tracked: TrackedMessage, count: int, seconds: float = 60) -> int:
    """Poll until the worker's buffer thread has written `count` events (bounded: the test
    fails after `seconds`, it never asserts how fast)."""
    deadline = time.monotonic() + seconds
    while (found := TrackingEvent.objects.filter(tracked=tracked).count()) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return found


def test_gunicorn_records_an_open_and_a_click_in_postgresql(sender):
    """The worker's buffer thread writes them while the server runs."""
    tracked = tracked_message(sender, "real@ourco.test")
    proc, port = start_gunicorn(database_url())
    try:
        pixel, click = make_tokens(tracked.pk)
        status, body, headers = fetch(port, pixel)
        assert (status, body, headers["Content-Type"]) == (200, PIXEL, "image/gif")
        assert "Set-Cookie" not in headers
        status, _, headers = fetch(port, click)
        assert (status, headers["Location"]) == (302, "https://example.org/x")
        assert fetch(port, pixel[:-3])[0] == 404
        assert wait_for_events(tracked, 2) == 2
    finally:
        proc.terminate()
        proc.wait(30)
    assert sorted(TrackingEvent.objects.values_list("kind", "machine")) == [
        ("click", False),
        ("open", False),
    ]


def test_a_worker_that_exits_writes_what_it_buffered(sender):
    """With an interval longer than the test, nothing is written while the server runs; a
    SIGTERM (gunicorn's graceful stop) writes the buffer on the worker's way out."""
    tracked = tracked_message(sender, "exit@ourco.test")
    proc, port = start_gunicorn(database_url(), MAILWARDEN_TRACKING_FLUSH_SECONDS="3600")
    try:
        pixel, click = make_tokens(tracked.pk)
        assert fetch(port, pixel)[0] == 200
        assert fetch(port, click)[0] == 302
        assert not TrackingEvent.objects.filter(tracked=tracked).exists()
    finally:
        proc.terminate()
        proc.wait(30)
    assert sorted(TrackingEvent.objects.filter(tracked=tracked).values_list("kind", flat=True)) == [
        "click",
        "open",
    ]


def test_with_the_database_down_the_pixel_and_redirect_still_answer():
    """Port 9 (discard) on 127.0.0.1: nothing listens, every connection is refused."""
    proc, port = start_gunicorn("postgres://postgres@127.0.0.1:9/nowhere")
    try:
        pixel, click = make_tokens(12345)
        for _ in range(3):
            status, body, _ = fetch(port, pixel)
            assert (status, body) == (200, PIXEL)
            status, _, headers = fetch(port, click)
            assert (status, headers["Location"]) == (302, "https://example.org/x")
        assert fetch(port, pixel[:-3])[0] == 404
    finally:
        proc.terminate()
        proc.wait(30)
