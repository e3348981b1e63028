"""manage.py import_mail: mbox files, Maildir folders and .eml folders, resumable, one summary."""

from __future__ import annotations

import mailbox
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from capture.importers import iter_mail_sources
from capture.models import EmailMessage, RawMessage
from tests.conftest import FIXTURES
from tests.factories import make_user

pytestmark = pytest.mark.django_db

MAIL = FIXTURES / "mail"
CLEAN = ["multipart_alternative.eml", "reply_in_thread_1.eml", "latin1_charset.eml"]


def run_import(*paths, user, **options) -> list[str]:
    out, err = StringIO(), StringIO()
    call_command(
        "import_mail", *map(str, paths), user=user.username, stdout=out, stderr=err, **options
    )
    return out.getvalue().strip().splitlines()


def write_mbox(path: Path, names: list[str]) -> Path:
    box = mailbox.mbox(path)
    for name in names:
        box.add((MAIL / name).read_bytes())
    box.flush()
    box.close()
    return path


def write_maildir(path: Path, names: list[str]) -> Path:
    box = mailbox.Maildir(path)
    for name in names:
        box.add((MAIL / name).read_bytes())
    box.close()
    return path


def test_an_mbox_with_three_messages_is_imported_and_processed(tmp_path):
    user = make_user()
    mbox = write_mbox(tmp_path / "Sent.mbox", CLEAN)
    lines = run_import(mbox, user=user, no_progress=True)
    assert lines[-1] == "3 processed, 0 rejected, 0 failed, 0 duplicates"
    raws = RawMessage.objects.filter(channel=RawMessage.Channel.IMPORT, user=user)
    assert raws.count() == 3
    assert set(raws.values_list("status", flat=True)) == {"processed"}
    assert EmailMessage.objects.count() == 3


def test_mbox_from_lines_are_separators_not_part_of_the_message(tmp_path):
    user = make_user()
    run_import(write_mbox(tmp_path / "one.mbox", CLEAN[:1]), user=user, no_progress=True)
    raw = RawMessage.objects.get()
    from capture.storage import read_raw

    stored = read_raw(raw.storage_path)
    assert not stored.startswith(b"From ")
    assert stored.startswith(b"Return-Path:")


def test_a_maildir_with_two_messages_is_imported(tmp_path):
    user = make_user()
    maildir = write_maildir(tmp_path / "Maildir", CLEAN[:2])
    lines = run_import(maildir, user=user, no_progress=True)
    assert lines[-1] == "2 processed, 0 rejected, 0 failed, 0 duplicates"
    assert RawMessage.objects.filter(channel="import").count() == 2


def test_a_folder_of_eml_files_is_walked_recursively_and_every_message_is_counted(tmp_path):
    user = make_user()
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    names = sorted(p.name for p in MAIL.glob("*.eml"))
    for i, name in enumerate(names):
        shutil.copy(MAIL / name, (folder / "sub" if i % 2 else folder) / name)
    (folder / "notes.txt").write_text("not mail")
    lines = run_import(folder, user=user, no_progress=True)
    counts = dict(
        (part.split(" ", 1)[1], int(part.split(" ", 1)[0])) for part in lines[-1].split(", ")
    )
    assert sum(counts.values()) == len(names)
    assert counts["rejected"] >= 1  # draft.eml and the too-deep message are refused
    assert RawMessage.objects.filter(channel="import").count() == len(names)
    assert (
        counts["processed"] + counts["duplicates"]
        == RawMessage.objects.filter(status="processed").count()
    )


def test_a_rerun_stores_nothing_new_and_counts_everything_as_duplicates(tmp_path):
    user = make_user()
    mbox = write_mbox(tmp_path / "Inbox", CLEAN)
    maildir = write_maildir(tmp_path / "Maildir", ["dsn.eml", "draft.eml"])
    first = run_import(mbox, maildir, user=user, no_progress=True)
    rows = RawMessage.objects.count()
    again = run_import(mbox, maildir, user=user, no_progress=True)
    assert first[-1] != again[-1]
    assert again[-1] == "0 processed, 0 rejected, 0 failed, 5 duplicates"
    assert RawMessage.objects.count() == rows


def test_an_interrupted_import_resumes_with_only_the_new_messages(tmp_path):
    user = make_user()
    run_import(write_mbox(tmp_path / "part.mbox", CLEAN[:2]), user=user, no_progress=True)
    lines = run_import(write_mbox(tmp_path / "all.mbox", CLEAN), user=user, no_progress=True)
    assert lines[-1] == "1 processed, 0 rejected, 0 failed, 2 duplicates"


def test_a_message_already_captured_by_another_channel_counts_only_as_a_duplicate(
    tmp_path, mail_fixture
):
    from capture.intake import RawSpec, store_raw_message
    from capture.pipeline import process_raw_message

    user = make_user()
    raw = store_raw_message(
        RawSpec(data=mail_fixture(CLEAN[0]), channel="api", user_id=user.pk), enqueue=False
    )
    assert process_raw_message(raw.pk).status == "processed"
    lines = run_import(write_mbox(tmp_path / "x.mbox", CLEAN[:2]), user=user, no_progress=True)
    assert lines[-1] == "1 processed, 0 rejected, 0 failed, 1 duplicates"
    assert EmailMessage.objects.count() == 2


def test_the_same_message_twice_in_one_run_is_one_capture(tmp_path):
    user = make_user()
    mbox = write_mbox(tmp_path / "dup.mbox", [CLEAN[0], CLEAN[0]])
    lines = run_import(mbox, user=user, no_progress=True)
    assert lines[-1] == "1 processed, 0 rejected, 0 failed, 1 duplicates"


def test_a_message_over_the_size_limit_is_counted_as_rejected(tmp_path, settings):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 100
    lines = run_import(
        write_mbox(tmp_path / "big.mbox", CLEAN[:1]), user=make_user(), no_progress=True
    )
    assert lines[-1] == "0 processed, 1 rejected, 0 failed, 0 duplicates"
    assert RawMessage.objects.count() == 0


def test_small_batches_give_the_same_counts(tmp_path):
    user = make_user()
    mbox = write_mbox(tmp_path / "Inbox", [*CLEAN, "draft.eml"])
    lines = run_import(mbox, user=user, no_progress=True, batch_size=1)
    assert lines[-1] == "3 processed, 1 rejected, 0 failed, 0 duplicates"


def test_an_unknown_user_or_missing_path_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="No active user"):
        call_command("import_mail", str(tmp_path), user="nobody-here")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_mail", str(tmp_path / "missing"), user=make_user().username)


def test_sources_name_mbox_maildir_and_eml_with_their_counts(tmp_path):
    write_mbox(tmp_path / "a.mbox", CLEAN)
    write_maildir(tmp_path / "Maildir", CLEAN[:2])
    shutil.copy(MAIL / "dsn.eml", tmp_path / "dsn.eml")
    found = {(s.kind, s.count) for s in iter_mail_sources([tmp_path])}
    assert found == {("mbox", 3), ("maildir", 2), ("eml", 1)}
