"""core/progress.py: a bar on a terminal, plain log lines otherwise; used by the long commands."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from tqdm import tqdm

from core.progress import LineProgress, progress_reporter


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gives_plain_lines_at_each_tenth_and_the_end():
    out = io.StringIO()
    with progress_reporter(total=95, desc="import", unit="msg", stream=out) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(95):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "import: 10/95 msg (10%)"
    assert lines[-1] == "import: 95/95 msg (100%)"
    assert len(lines) == 10
    assert "\r" not in out.getvalue()


def test_unknown_total_writes_the_count_at_the_end():
    out = io.StringIO()
    bar = progress_reporter(desc="sync", unit="msg", stream=out)
    bar.update(7)
    bar.close()
    assert out.getvalue() == "sync: 7 msg\n"


def test_a_terminal_gets_a_tqdm_bar():
    out = Tty()
    bar = progress_reporter(total=3, desc="import", stream=out)
    assert isinstance(bar, tqdm)
    bar.update(3)
    bar.close()
    assert "3/3" in out.getvalue() and "\r" in out.getvalue()


def test_disabled_writes_nothing():
    out = Tty()
    with progress_reporter(total=3, stream=out, enabled=False) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_reset_starts_over_with_a_new_total():
    out = io.StringIO()
    bar = progress_reporter(total=0, desc="mailbox 1", stream=out, lines=2)
    bar.reset(total=4)
    bar.update(2)
    bar.update(2)
    bar.close()
    assert out.getvalue().splitlines() == [
        "mailbox 1: 2/4 item (50%)",
        "mailbox 1: 4/4 item (100%)",
    ]


@pytest.mark.django_db
def test_import_mail_logs_progress_lines_when_not_on_a_terminal(tmp_path, mail_fixture):
    from tests.factories import make_user

    make_user(username="importer", email="importer@mailwarden-demo.com")
    for i in range(3):
        (tmp_path / f"m{i}.eml").write_bytes(
            f"From: a@customer.example\r\nTo: importer@mailwarden-demo.com\r\nSubject: s{i}\r\n"
            f"Message-ID: <imp-{i}@customer.example>\r\nDate: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\nx\r\n".encode()
        )
    out, err = io.StringIO(), io.StringIO()
    call_command("import_mail", str(tmp_path), user="importer", stdout=out, stderr=err)
    assert "import: 3/3 msg (100%)" in err.getvalue().splitlines()
    assert "3 processed" in out.getvalue()


@pytest.mark.django_db
def test_seed_demo_logs_progress_lines(settings):
    err = io.StringIO()
    call_command("seed_demo", organizations=5, messages=12, stdout=io.StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert "demo mail: 12/12 msg (100%)" in lines
