"""manage.py import_mail: mbox files, Maildir folders, message files recognised by content and
Outlook .msg files; resumable; every file counted in one summary."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import shutil
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from extract_msg import OleWriter

from capture.importers import (
    OLE_MAGIC,
    SNIFF_BYTES,
    SkipSource,
    iter_mail_sources,
    looks_like_header_block,
    outlook_msg_to_mime,
)
from capture.models import EmailMessage, RawMessage
from tests.capture.outlook_msg import write_outlook_msg
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


def run_import_full(*paths, user, **options) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) of one import without a progress bar, stripped."""
    out, err = StringIO(), StringIO()
    call_command(
        "import_mail",
        *map(str, paths),
        user=user.username,
        no_progress=True,
        stdout=out,
        stderr=err,
        **options,
    )
    return (
        [line.strip() for line in out.getvalue().splitlines() if line.strip()],
        [line.strip() for line in err.getvalue().splitlines() if line.strip()],
    )


def parse_line(line: str) -> dict[str, int]:
    """'3 processed, 0 rejected, ...' -> {'processed': 3, 'rejected': 0, ...}."""
    counts = {}
    for part in line.split(", "):
        number, word = part.split(" ", 1)
        counts[word] = int(number)
    return counts


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
    assert lines[-1] == "3 processed, 0 rejected, 0 failed, 0 duplicates, 0 skipped"
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
    assert lines[-1] == "2 processed, 0 rejected, 0 failed, 0 duplicates, 0 skipped"
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
    counts = parse_line(lines[-1])
    assert sum(counts.values()) == len(names) + 1
    assert counts["skipped"] == 1  # notes.txt, counted and named, not passed over
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
    assert again[-1] == "0 processed, 0 rejected, 0 failed, 5 duplicates, 0 skipped"
    assert RawMessage.objects.count() == rows


def test_an_interrupted_import_resumes_with_only_the_new_messages(tmp_path):
    user = make_user()
    run_import(write_mbox(tmp_path / "part.mbox", CLEAN[:2]), user=user, no_progress=True)
    lines = run_import(write_mbox(tmp_path / "all.mbox", CLEAN), user=user, no_progress=True)
    assert lines[-1] == "1 processed, 0 rejected, 0 failed, 2 duplicates, 0 skipped"


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
    assert lines[-1] == "1 processed, 0 rejected, 0 failed, 1 duplicates, 0 skipped"
    assert EmailMessage.objects.count() == 2


def test_the_same_message_twice_in_one_run_is_one_capture(tmp_path):
    user = make_user()
    mbox = write_mbox(tmp_path / "dup.mbox", [CLEAN[0], CLEAN[0]])
    lines = run_import(mbox, user=user, no_progress=True)
    assert lines[-1] == "1 processed, 0 rejected, 0 failed, 1 duplicates, 0 skipped"


def test_a_message_over_the_size_limit_is_counted_as_rejected(tmp_path, settings):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 100
    lines = run_import(
        write_mbox(tmp_path / "big.mbox", CLEAN[:1]), user=make_user(), no_progress=True
    )
    assert lines[-1] == "0 processed, 1 rejected, 0 failed, 0 duplicates, 0 skipped"
    assert RawMessage.objects.count() == 0


def test_small_batches_give_the_same_counts(tmp_path):
    user = make_user()
    mbox = write_mbox(tmp_path / "Inbox", [*CLEAN, "draft.eml"])
    lines = run_import(mbox, user=user, no_progress=True, batch_size=1)
    assert lines[-1] == "3 processed, 1 rejected, 0 failed, 0 duplicates, 0 skipped"


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


# --- every file counted: recognised by content, skipped with a reason -----------------------

RECEIVED_HEADERS = (
    "Received: from mx.example.com by mail.example.org; Mon, 3 Jun 2024 09:00:00 +0000\r\n"
    "From: Jane Roe <jane@example.com>\r\n"
    "To: Sam <{to}>\r\n"
    "Subject: Quote for 40 units\r\n"
    "Date: Mon, 3 Jun 2024 09:00:00 +0000\r\n"
    "Message-ID: <quote-40@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="outlook-original"\r\n'
    "Content-Transfer-Encoding: 7bit\r\n\r\n"
)
PDF = b"%PDF-1.4\n% a quote\n" + bytes(range(256))


def write_received_msg(path: Path, user) -> Path:
    return write_outlook_msg(
        path,
        transport_headers=RECEIVED_HEADERS.format(to=user.email),
        html=b"<html><body><p>Hello Sam,</p><p>the quote is attached.</p></body></html>",
        attachments=(("quote-40.pdf", "application/pdf", PDF),),
    )


def lf(name: str) -> bytes:
    return (MAIL / name).read_bytes().replace(b"\r\n", b"\n")


def make_mixed_export(folder: Path, user) -> dict[str, int]:
    """An export as people have them: messages under any name, an mbox without an extension,
    an Outlook .msg, and files that are not mail. Returns {file: messages it holds (1 for a
    file that is skipped)}: what the summary must add up to."""
    folder.mkdir()
    shutil.copy(MAIL / CLEAN[0], folder / "offer.txt")  # CRLF
    (folder / "reply.raw").write_bytes(lf(CLEAN[1]))  # LF
    shutil.copy(MAIL / CLEAN[2], folder / "1741078860")  # no extension at all
    (folder / "saved-from-notepad.txt").write_bytes(b"\xef\xbb\xbf" + lf("base64_and_qp.eml"))
    write_mbox(folder / "Inbox", ["reply_in_thread_2.eml", "nested_multipart.eml"])
    write_received_msg(folder / "quote.msg", user)
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8)
    (folder / "contacts.csv").write_text("name,email,subject\nJane,jane@example.com,Quote\n")
    (folder / "rules.json").write_text('{"From": "jane@example.com", "Subject": "x"}\n')
    (folder / "memo.txt").write_text("From the desk of the CEO: no more mail exports.\n")
    (folder / "empty.eml").write_bytes(b"")
    (folder / "moved.eml").symlink_to(folder / "no-longer-here.eml")  # unreadable
    os.mkfifo(folder / "pipe")  # never opened (a read would block)
    return {
        **dict.fromkeys(["offer.txt", "reply.raw", "1741078860", "saved-from-notepad.txt"], 1),
        "Inbox": 2,
        "quote.msg": 1,
        **dict.fromkeys(["photo.jpg", "contacts.csv", "rules.json", "memo.txt"], 1),
        **dict.fromkeys(["empty.eml", "moved.eml", "pipe"], 1),
    }


def test_every_file_of_a_mixed_export_is_imported_or_skipped_with_its_reason(tmp_path):
    user = make_user()
    seen = make_mixed_export(tmp_path / "export", user)
    out, err = run_import_full(tmp_path / "export", user=user)
    assert out[-1] == "7 processed, 0 rejected, 0 failed, 0 duplicates, 7 skipped"
    assert sum(parse_line(out[-1]).values()) == sum(seen.values())
    assert sorted(err) == [
        "skipped empty: 1",
        "skipped not_a_file: 1",
        "skipped not_mail: 4",
        "skipped unreadable: 1",
    ]
    assert RawMessage.objects.filter(channel="import", status="processed").count() == 7
    subjects = set(EmailMessage.objects.values_list("subject", flat=True))
    assert "Quote for 40 units" in subjects


def test_a_rerun_of_a_mixed_export_counts_every_message_as_a_duplicate(tmp_path):
    user = make_user()
    make_mixed_export(tmp_path / "export", user)
    run_import_full(tmp_path / "export", user=user)
    rows = RawMessage.objects.count()
    out, _ = run_import_full(tmp_path / "export", user=user)
    # The .msg converts to the same bytes again (no random MIME boundaries): a duplicate too.
    assert out[-1] == "0 processed, 0 rejected, 0 failed, 7 duplicates, 7 skipped"
    assert RawMessage.objects.count() == rows


def test_an_outlook_msg_becomes_a_message_with_its_headers_bodies_and_attachment(tmp_path):
    user = make_user()
    out, _ = run_import_full(write_received_msg(tmp_path / "quote.msg", user), user=user)
    assert out[-1] == "1 processed, 0 rejected, 0 failed, 0 duplicates, 0 skipped"
    stored = EmailMessage.objects.get()
    assert stored.message_id == "quote-40@example.com"
    assert stored.from_address == "jane@example.com"
    assert stored.subject == "Quote for 40 units"
    assert "the quote is attached." in stored.text_body
    assert "<p>Hello Sam,</p>" in stored.html_body
    attachment = stored.attachments.get()
    assert (attachment.filename, attachment.content_type) == ("quote-40.pdf", "application/pdf")
    assert attachment.size == len(PDF)


def test_an_outlook_msg_without_transport_headers_keeps_its_subject_and_date(tmp_path):
    path = write_outlook_msg(
        tmp_path / "sent.msg",
        subject="Minutes of Monday",
        sender_name="Sam",
        sent_at=datetime(2024, 6, 3, 9, 30, tzinfo=UTC),
    )
    message = email.message_from_bytes(outlook_msg_to_mime(path), policy=email.policy.default)
    assert message["Subject"] == "Minutes of Monday"
    assert message["Date"].datetime == datetime(2024, 6, 3, 9, 30, tzinfo=UTC)
    assert message["MIME-Version"] == "1.0"
    assert "Content-Transfer-Encoding" not in message  # only the parts are encoded
    assert "To" not in message  # no empty headers made up from absent properties
    assert message.get_body(("plain",)).get_content().strip().startswith("Hello Sam,")


def test_outlook_files_that_are_not_mail_or_cannot_be_read_are_skipped_with_a_reason(tmp_path):
    user = make_user()
    write_outlook_msg(tmp_path / "jane.msg", message_class="IPM.Contact")
    (tmp_path / "broken.msg").write_bytes(OLE_MAGIC + b"\x00" * 4000)
    out, err = run_import_full(tmp_path, user=user)
    assert out[-1] == "0 processed, 0 rejected, 0 failed, 0 duplicates, 2 skipped"
    assert sorted(err) == [
        "skipped outlook_item_not_mail: 1",
        "skipped outlook_msg_unsupported: 1",
    ]
    assert RawMessage.objects.count() == 0


def test_an_ole_file_that_is_no_outlook_item_is_not_mail(tmp_path):
    writer = OleWriter()
    writer.addEntry("WordDocument", b"\x00" * 600)  # an OLE file, but no message class
    writer.write(str(tmp_path / "letter.doc"))
    with pytest.raises(SkipSource) as skipped:
        outlook_msg_to_mime(tmp_path / "letter.doc")
    assert skipped.value.reason == "not_mail"


def test_a_maildir_counts_its_own_files_and_deliveries_still_in_tmp(tmp_path):
    user = make_user()
    maildir = write_maildir(tmp_path / "Maildir", CLEAN[:2])
    (maildir / "dovecot-uidlist").write_text("3 V1700000000 N3 G0123456789abcdef\n1 :1\n")
    (maildir / "tmp" / "1700000000.M1P2.host").write_bytes((MAIL / CLEAN[2]).read_bytes())
    out, err = run_import_full(maildir, user=user)
    assert out[-1] == "2 processed, 0 rejected, 0 failed, 0 duplicates, 2 skipped"
    assert sorted(err) == ["skipped maildir_tmp: 1", "skipped not_mail: 1"]


def test_a_file_named_on_the_command_line_that_is_not_mail_is_counted_as_skipped(tmp_path):
    (tmp_path / "report.pdf").write_bytes(PDF)
    out, err = run_import_full(tmp_path / "report.pdf", user=make_user())
    assert out[-1] == "0 processed, 0 rejected, 0 failed, 0 duplicates, 1 skipped"
    assert err == ["skipped not_mail: 1"]


def test_a_symlinked_folder_is_counted_not_followed(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(MAIL / CLEAN[0], tmp_path / "elsewhere" / "one.eml")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "link").symlink_to(tmp_path / "elsewhere")
    out, err = run_import_full(tmp_path / "export", user=make_user())
    assert out[-1] == "0 processed, 0 rejected, 0 failed, 0 duplicates, 1 skipped"
    assert err == ["skipped symlinked_folder: 1"]


def test_sources_name_each_kind_and_each_skipped_file_with_its_reason(tmp_path):
    user = make_user()
    make_mixed_export(tmp_path / "export", user)
    found = {s.path.name: (s.kind, s.count, s.reason) for s in iter_mail_sources([tmp_path])}
    assert found == {
        "offer.txt": ("eml", 1, ""),
        "reply.raw": ("eml", 1, ""),
        "1741078860": ("eml", 1, ""),
        "saved-from-notepad.txt": ("eml", 1, ""),
        "Inbox": ("mbox", 2, ""),
        "quote.msg": ("outlook", 1, ""),
        "photo.jpg": ("skipped", 0, "not_mail"),
        "contacts.csv": ("skipped", 0, "not_mail"),
        "rules.json": ("skipped", 0, "not_mail"),
        "memo.txt": ("skipped", 0, "not_mail"),
        "empty.eml": ("skipped", 0, "empty"),
        "moved.eml": ("skipped", 0, "unreadable"),
        "pipe": ("skipped", 0, "not_a_file"),
    }


def test_a_bom_before_a_message_is_not_stored(tmp_path):
    user = make_user()
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + (MAIL / CLEAN[0]).read_bytes())
    run_import_full(tmp_path / "bom.txt", user=user)
    from capture.storage import read_raw

    assert read_raw(RawMessage.objects.get().storage_path) == (MAIL / CLEAN[0]).read_bytes()


def test_a_bom_before_an_mbox_is_skipped_rather_than_losing_its_first_message(tmp_path):
    mbox = write_mbox(tmp_path / "box", CLEAN[:2])
    mbox.write_bytes(b"\xef\xbb\xbf" + mbox.read_bytes())
    out, err = run_import_full(mbox, user=make_user())
    assert out[-1] == "0 processed, 0 rejected, 0 failed, 0 duplicates, 1 skipped"
    assert err == ["skipped mbox_with_bom: 1"]


HEADERS = (
    b"Return-Path: <jane@example.com>\n"
    b"Received: from mx.example.com\n\tby mail.example.org; Mon, 3 Jun 2024 09:00:00 +0000\n"
    b"From: Jane <jane@example.com>\n"
    b"Subject: a folded\n  subject\n"
)


@pytest.mark.parametrize(
    "head",
    [
        HEADERS + b"\nbody\n",
        HEADERS.replace(b"\n", b"\r\n") + b"\r\nbody\r\n",
        HEADERS,  # headers only, ended by the end of the file
        b"Subject : obsolete space before the colon\nMessage-ID: <a@b>\n\n",
        b"From: jane@example.com\nDate: Mon, 3 Jun 2024 09:00:00 +0000\n\n\x00binary body",
        b"X-Custom: 1\nMIME-Version: 1.0\nContent-Type: text/plain\n\nhello",
    ],
    ids=["lf", "crlf", "headers-only", "obsolete-colon", "binary-body", "mime-only"],
)
def test_an_rfc5322_header_block_is_recognised_as_mail(head):
    assert looks_like_header_block(head)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\nFrom: jane@example.com\nSubject: x\n\n",  # an empty line first: no header block
        b" folded: before any field\nFrom: jane@example.com\nSubject: x\n\n",
        b"Subject: notes for Monday\n\nbuy milk\n",  # one field alone
        b"Date: 2024-06-03\nTitle: minutes\nAuthor: Sam\n\ntext\n",  # no originator
        b"Subject: x\nTo: sam@example.com\n\n",  # no originator either
        b"name,email\nJane,jane@example.com\n",
        b'{"From": "jane@example.com"}\n',
        b"HTTP/1.1 200 OK\nDate: Mon, 3 Jun 2024 09:00:00 GMT\nServer: nginx\n\n",
        b"From: jane@example.com\nSubject: x\nthis line is prose, not a field\n\n",
        b"From: jane@exa\x00mple.com\nSubject: x\n\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
    ids=[
        "empty",
        "blank-first",
        "continuation-first",
        "subject-only",
        "notes",
        "no-originator",
        "csv",
        "json",
        "http",
        "prose-line",
        "nul",
        "png",
    ],
)
def test_text_that_is_not_a_header_block_is_not_mail(head):
    assert not looks_like_header_block(head)


def test_a_header_block_longer_than_the_sniffed_start_is_judged_on_that_start(tmp_path):
    hops = b"Return-Path: <jane@example.com>\n" + b"".join(
        b"Received: from hop%d.example.com by hop%d.example.org; Mon, 3 Jun 2024\n" % (n, n + 1)
        for n in range(2000)
    )
    data = hops + lf(CLEAN[0])
    assert len(hops) > SNIFF_BYTES
    (tmp_path / "long-route").write_bytes(data)
    assert [(s.kind, s.count) for s in iter_mail_sources([tmp_path])] == [("eml", 1)]
