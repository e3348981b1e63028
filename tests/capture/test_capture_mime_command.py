"""manage.py capture_mime: one message from an MTA pipe, answered with sysexits codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from capture.addresses import get_or_create_capture_address
from capture.models import RawMessage
from capture.storage import read_raw
from tests.conftest import FIXTURES
from tests.factories import make_user, make_user_address

REPO = Path(__file__).resolve().parents[2]
MESSAGE = (FIXTURES / "mail" / "multipart_alternative.eml").read_bytes()
SENDER = "jane.doe@acme-widgets.com"  # the fixture's From


def pipe(monkeypatch, data: bytes, **options) -> tuple[int, str, str]:
    """Run the command as an MTA would: bytes on stdin; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("capture_mime", stdout=out, stderr=err, **options)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_a_message_piped_for_a_user_is_stored_exactly_and_processed(monkeypatch):
    user = make_user()
    code, out, _ = pipe(monkeypatch, MESSAGE, user=user.username)
    assert code == os.EX_OK
    raw = RawMessage.objects.get()
    assert raw.channel == RawMessage.Channel.PIPE
    assert raw.user == user
    assert raw.status == "processed"
    assert read_raw(raw.storage_path) == MESSAGE
    assert f"stored raw #{raw.pk}: processed" in out


@pytest.mark.django_db
def test_a_message_piped_to_a_capture_address_is_captured_for_its_owner(monkeypatch):
    user = make_user()
    make_user_address(user, SENDER)
    address = get_or_create_capture_address(user)
    code, _, _ = pipe(monkeypatch, MESSAGE, recipient=address.address, sender=SENDER)
    assert code == os.EX_OK
    raw = RawMessage.objects.get()
    assert (raw.user, raw.capture_address, raw.envelope_from) == (user, address, SENDER)
    assert raw.envelope_to == [address.address]
    assert raw.status == "processed"


@pytest.mark.django_db
def test_a_sender_who_is_not_the_owner_is_rejected_with_65_and_the_reason(monkeypatch):
    address = get_or_create_capture_address(make_user())
    code, _, err = pipe(monkeypatch, MESSAGE, recipient=address.address, sender=SENDER)
    assert code == os.EX_DATAERR
    assert "sender_not_allowed" in err
    assert RawMessage.objects.get().status == "rejected"


@pytest.mark.django_db
def test_a_draft_is_rejected_with_65(monkeypatch):
    user = make_user()
    code, _, err = pipe(
        monkeypatch, (FIXTURES / "mail" / "draft.eml").read_bytes(), user=user.username
    )
    assert code == os.EX_DATAERR
    assert "draft" in err


@pytest.mark.django_db
def test_an_unknown_user_or_recipient_exits_67_and_stores_nothing(monkeypatch, settings):
    code, _, _ = pipe(monkeypatch, MESSAGE, user="nobody")
    assert code == os.EX_NOUSER
    bogus = f"log+0000deadbeef@{settings.MAILWARDEN_CAPTURE_DOMAIN}"
    code, _, err = pipe(monkeypatch, MESSAGE, recipient=bogus)
    assert code == os.EX_NOUSER
    assert "unknown_recipient" in err
    assert RawMessage.objects.count() == 0


@pytest.mark.django_db
def test_a_users_own_address_as_recipient_captures_for_that_user(monkeypatch):
    user = make_user()
    code, _, _ = pipe(monkeypatch, MESSAGE, recipient=user.email.upper())
    assert code == os.EX_OK
    assert RawMessage.objects.get().user == user


@pytest.mark.django_db
def test_a_message_piped_twice_is_stored_once_and_still_exits_0(monkeypatch):
    user = make_user()
    assert pipe(monkeypatch, MESSAGE, user=user.username)[0] == os.EX_OK
    code, out, _ = pipe(monkeypatch, MESSAGE, user=user.username)
    assert code == os.EX_OK
    assert "already captured" in out
    assert RawMessage.objects.count() == 1


@pytest.mark.django_db
def test_a_message_over_the_size_limit_exits_65(monkeypatch, settings):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 100
    code, _, err = pipe(monkeypatch, MESSAGE, user=make_user().username)
    assert code == os.EX_DATAERR
    assert "too_large" in err
    assert RawMessage.objects.count() == 0


@pytest.mark.django_db
def test_a_store_outage_exits_75_so_the_mta_retries(monkeypatch, settings, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the raw store's folder should be")
    settings.MAILWARDEN_RAW_STORAGE_DIR = blocker
    code, _, err = pipe(monkeypatch, MESSAGE, user=make_user().username)
    assert code == os.EX_TEMPFAIL
    assert err.startswith("4.3.0")
    assert RawMessage.objects.count() == 0


# --- the real thing: a separate process, as the MTA runs it ----------------------------------


def manage(args: list[str], env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("pipe")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "MAILWARDEN_VAR_DIR": str(base / "var"),
        "MAILWARDEN_ENV_FILE": str(base / "no.env"),
        "CELERY_BROKER_URL": "",
        "MAILWARDEN_LOG_LEVEL": "ERROR",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = manage(["migrate", "--noinput"], env)
    assert done.returncode == 0, done.stderr.decode()
    made = manage(
        [
            "shell",
            "-c",
            "from crm.models import User; User.objects.create_user('piper', 'piper@example.com')",
        ],
        env,
    )
    assert made.returncode == 0, made.stderr.decode()
    return env


def test_real_exit_codes_from_a_separate_process(sqlite_env):
    stored = manage(["capture_mime", "--user", "piper"], sqlite_env, MESSAGE)
    assert stored.returncode == 0, stored.stderr.decode()
    unknown = manage(["capture_mime", "--user", "ghost"], sqlite_env, MESSAGE)
    assert unknown.returncode == 67
    draft = (FIXTURES / "mail" / "draft.eml").read_bytes()
    rejected = manage(["capture_mime", "--user", "piper"], sqlite_env, draft)
    assert rejected.returncode == 65
    assert b"draft" in rejected.stderr


def test_a_database_that_is_down_exits_75(sqlite_env):
    env = {**sqlite_env, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"}
    down = manage(["capture_mime", "--user", "piper"], env, MESSAGE)
    assert down.returncode == 75, down.stderr.decode()
