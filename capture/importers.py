"""Mail that arrives by hand: one message piped by an MTA, or whole exports from mail clients.

- `capture_piped_message`: the MTA pipe transport (`manage.py capture_mime`) stores one message
  and processes it at once, so the exit code can tell the MTA stored / rejected / try later.
- `iter_mail_sources` + `import_mail`: mbox files, Maildir folders, folders of message files
  and Outlook .msg files (what users export from Thunderbird, Apple Mail, Outlook, mutt...).
  A file is recognised by its content (an RFC 5322 header block, an mbox "From " line, an OLE
  compound file) as well as by its name; every other file is counted as skipped with a reason,
  never passed over. Each message gets the idempotency key `import:<user>:<sha256>`, so a
  re-run (or a resumed run) stores nothing new.
"""

from __future__ import annotations

import hashlib
import logging
import mailbox
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import DatabaseError

from capture.errors import InputRejected, StoreUnavailable
from capture.intake import RawSpec, check_size, store_raw_message, store_raw_messages
from capture.models import CaptureAddress, RawMessage
from crm.models import User

if TYPE_CHECKING:
    from extract_msg.msg_classes import MessageBase

log = logging.getLogger(__name__)

IMPORT_BATCH = 100
EML_SUFFIXES = {".eml", ".msg822", ".rfc822"}
MBOX_SUFFIXES = {".mbox", ".mbx"}


class UnknownRecipient(InputRejected):
    """The pipe named a user or capture address that does not exist (EX_NOUSER)."""


# --- the MTA pipe --------------------------------------------------------------------------


@dataclass(frozen=True)
class PipeResult:
    raw_id: int
    status: str
    reason_code: str = ""
    duplicate: bool = False


def resolve_pipe_owner(
    *, username: str = "", recipient: str = ""
) -> tuple[User, CaptureAddress | None]:
    """The user (and capture address) a piped message is for; raises UnknownRecipient."""
    if username:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise UnknownRecipient("unknown_user", "no active user with that username")
        return user, None
    from capture.addresses import resolve_capture_address
    from crm.addresses import InvalidAddress, normalize_address

    addr = resolve_capture_address(recipient)
    if addr is not None:
        return addr.user, addr
    try:
        normalized = normalize_address(recipient)
    except InvalidAddress as e:
        raise UnknownRecipient("unknown_recipient", "not a valid address") from e
    from crm.models import UserAddress

    owner = (
        UserAddress.objects.verified()
        .filter(address=normalized, user__is_active=True)
        .select_related("user")
        .first()
    )
    if owner is not None:
        return owner.user, None
    user = User.objects.filter(email__iexact=normalized, is_active=True).first()
    if user is None:
        raise UnknownRecipient("unknown_recipient", "no capture address or user has it")
    return user, None


def capture_piped_message(
    data: bytes,
    *,
    user: User,
    capture_address: CaptureAddress | None = None,
    envelope_from: str = "",
    envelope_to: list[str] | None = None,
) -> PipeResult:
    """Store one message from an MTA pipe and process it now.

    Raises InputRejected (too large) before storing and StoreUnavailable when the store is
    down. A message already piped before (same user, same bytes) is processed again only if
    it never finished, and reported as a duplicate.
    """
    from capture.pipeline import process_raw_message

    check_size(len(data))
    key = f"pipe:{user.pk}:{hashlib.sha256(data).hexdigest()}"
    existing = _existing_keys([key])
    raw = store_raw_message(
        RawSpec(
            data=data,
            channel=RawMessage.Channel.PIPE,
            user_id=user.pk,
            capture_address_id=capture_address.pk if capture_address else None,
            envelope_from=envelope_from,
            envelope_to=list(envelope_to or []),
            source="pipe",
            idempotency_key=key,
        ),
        enqueue=False,
    )
    duplicate = key in existing
    if duplicate and raw.status not in (RawMessage.Status.PENDING, RawMessage.Status.FAILED):
        return PipeResult(raw.pk, raw.status, raw.reason_code, duplicate=True)
    outcome = process_raw_message(raw.pk)
    return PipeResult(
        raw.pk, outcome.status, outcome.reason_code, duplicate=duplicate or outcome.duplicate
    )


# --- reading exports -----------------------------------------------------------------------

SNIFF_BYTES = 64 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE compound file: Outlook .msg (or .doc...)
UTF8_BOM = b"\xef\xbb\xbf"
# Header fields that say "this is a message"; a header block needs two of them, one of which
# names an originator, a hop or the message itself (so "Date: ..\nTitle: .." notes are not mail).
MAIL_FIELDS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "date",
        "subject",
        "message-id",
        "in-reply-to",
        "references",
        "received",
        "return-path",
        "delivered-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "x-mailer",
        "user-agent",
        "dkim-signature",
        "authentication-results",
    }
)
ORIGIN_FIELDS = frozenset(
    {"from", "sender", "message-id", "received", "return-path", "delivered-to", "mime-version"}
)
# RFC 5322 field name (printable ASCII but the colon), obsolete whitespace before the colon.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


class SkipSource(Exception):
    """A file that holds no message to import; `reason` says why (counted as skipped)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class MailSource:
    """One mbox file, Maildir folder, message file or Outlook .msg, and how many messages it
    holds; or a file that is skipped (kind "skipped", count 0) and why."""

    path: Path
    kind: str  # "mbox" | "maildir" | "eml" | "outlook" | "skipped"
    count: int
    reason: str = ""

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """(label, bytes) for each message; the label names the file and position only.

        Raises SkipSource (a file that turns out to hold nothing importable) or OSError.
        """
        if self.kind == "skipped":
            raise SkipSource(self.reason)
        if self.kind == "eml":
            data = self.path.read_bytes().removeprefix(UTF8_BOM)
            if data.startswith(b"From "):  # an mbox "From " separator line is not a header
                data = data.partition(b"\n")[2]
            yield self.path.name, data
            return
        if self.kind == "outlook":
            yield self.path.name, outlook_msg_to_mime(self.path)
            return
        if self.kind == "mbox":
            box: mailbox.Mailbox = mailbox.mbox(self.path, create=False)
        else:
            box = mailbox.Maildir(self.path, factory=None, create=False)
        try:
            for n, key in enumerate(sorted(box.keys()) if self.kind == "maildir" else box.keys()):
                yield f"{self.path.name}#{n + 1}", box.get_bytes(key)
        finally:
            box.close()


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _count_mbox(path: Path) -> int:
    box = mailbox.mbox(path, create=False)
    try:
        return len(box)
    finally:
        box.close()


def looks_like_header_block(head: bytes, *, complete: bool = True) -> bool:
    """Whether `head` starts with an RFC 5322 header block (CRLF or LF) naming a message.

    A run of `Name: value` lines (folded lines continue the one before), ended by an empty
    line or the end of the data, with at least two mail fields, one of them From, Sender,
    Message-ID, Received, Return-Path, Delivered-To or MIME-Version. `complete=False`: `head`
    is the start of a longer file, so its last line may be cut short and is not judged.
    """
    lines = head.split(b"\n")
    if not complete:
        lines = lines[:-1]
    names: set[str] = set()
    for line in lines:
        line = line.removesuffix(b"\r")
        if not line:
            break
        if b"\x00" in line:
            return False
        if line[:1] in (b" ", b"\t"):
            if not names:
                return False  # a continuation before any field
            continue
        match = _FIELD.match(line)
        if match is None:
            return False
        names.add(match.group(1).decode("ascii").lower())
    known = names & MAIL_FIELDS
    return len(known) >= 2 and bool(known & ORIGIN_FIELDS)


def _skipped(path: Path, reason: str) -> MailSource:
    return MailSource(path, "skipped", 0, reason)


def _source_for_file(path: Path) -> MailSource:
    """What one file holds: decided by its name where that is certain, else by its content."""
    try:
        info = path.stat()  # follows a symlink; a broken one is unreadable
    except OSError:
        return _skipped(path, "unreadable")
    if not stat.S_ISREG(info.st_mode):
        return _skipped(path, "not_a_file")  # a FIFO, socket or device: never opened
    if info.st_size == 0:
        return _skipped(path, "empty")
    suffix = path.suffix.lower()
    if suffix in EML_SUFFIXES:
        return MailSource(path, "eml", 1)  # the fast path: read once, when it is imported
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return _skipped(path, "unreadable")
    complete = len(head) < SNIFF_BYTES
    if head.startswith(OLE_MAGIC):
        return MailSource(path, "outlook", 1)
    if head.startswith(b"From ") and (
        suffix in MBOX_SUFFIXES
        or looks_like_header_block(head.partition(b"\n")[2], complete=complete)
    ):
        try:
            count = _count_mbox(path)
        except OSError:
            return _skipped(path, "unreadable")
        return MailSource(path, "mbox", count) if count else _skipped(path, "not_mail")
    if head.startswith(UTF8_BOM):
        head = head.removeprefix(UTF8_BOM)
        if head.startswith(b"From "):
            # mailbox.mbox would drop the first message behind the BOM without a word.
            return _skipped(path, "mbox_with_bom")
    if looks_like_header_block(head, complete=complete):
        return MailSource(path, "eml", 1)
    return _skipped(path, "not_mail")


def _maildir_sources(path: Path, files: list[str]) -> list[MailSource]:
    box = mailbox.Maildir(path, factory=None, create=False)
    found = [MailSource(path, "maildir", len(box))]
    # A delivery still in tmp/ is not a message yet; say so rather than pass over it.
    tmp = path / "tmp"
    if tmp.is_dir():
        found += [_skipped(tmp / n, "maildir_tmp") for n in sorted(os.listdir(tmp))]
    # The Maildir's own files (dovecot-uidlist, maildirfolder...) are judged like any other.
    found += [_source_for_file(path / name) for name in sorted(files)]
    return found


def iter_mail_sources(paths: list[str | Path]) -> list[MailSource]:
    """Every file and Maildir under `paths` (folders are walked recursively), as mail sources
    or as skipped files with a reason; nothing found is left out.

    A path that does not exist raises FileNotFoundError.
    """
    found: list[MailSource] = []
    for given in paths:
        path = Path(given)
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if not path.is_dir():
            found.append(_source_for_file(path))
            continue
        for root, dirs, files in os.walk(path):
            here = Path(root)
            # os.walk does not enter a symlinked folder (it could loop): count it as skipped.
            links = {d for d in dirs if (here / d).is_symlink()}
            found += [_skipped(here / d, "symlinked_folder") for d in sorted(links)]
            if _is_maildir(here):
                found += _maildir_sources(here, files)
                # cur/new/tmp belong to this Maildir; Maildir++ subfolders (.Sent) are walked.
                dirs[:] = sorted(d for d in dirs if d not in {"cur", "new", "tmp"} | links)
                continue
            dirs[:] = sorted(d for d in dirs if d not in links)
            found += [_source_for_file(here / name) for name in sorted(files)]
    return found


# --- Outlook .msg --------------------------------------------------------------------------

# Outlook items that are mail (a note, a post, a meeting request or response); contacts,
# tasks, appointments, journal entries and sticky notes are not.
_OUTLOOK_MAIL_CLASSES = ("ipm.note", "report.", "ipm.post", "ipm.schedule.meeting.")


def outlook_msg_to_mime(path: Path) -> bytes:
    """An Outlook .msg file as RFC 5322 MIME bytes (headers, text and HTML bodies, attachments).

    Raises SkipSource: `not_mail` (an OLE file that is no Outlook item), `outlook_item_not_mail`
    (a contact, task...) or `outlook_msg_unsupported` (extract-msg cannot read or convert it).
    The same file always gives the same bytes, so a re-run recognises it as a duplicate.
    """
    import extract_msg
    from extract_msg.exceptions import InvalidFileFormatError

    chatty = logging.getLogger("extract_msg")
    if chatty.level == logging.NOTSET:  # a warning per absent optional property: noise here
        chatty.setLevel(logging.ERROR)
    data = path.read_bytes()
    try:
        msg = extract_msg.openMsg(str(path), strict=True)
    except InvalidFileFormatError:
        raise SkipSource("not_mail") from None
    except Exception as e:  # extract-msg raises many kinds on a corrupt or exotic file
        log.info("import: cannot open an Outlook .msg: %s", e.__class__.__name__)
        raise SkipSource("outlook_msg_unsupported") from None
    try:
        if not (msg.classType or "").lower().startswith(_OUTLOOK_MAIL_CLASSES):
            raise SkipSource("outlook_item_not_mail")
        try:
            converted = _outlook_message(msg, hashlib.sha256(data).hexdigest()[:32])
        except Exception as e:
            log.info("import: cannot convert an Outlook .msg: %s", e.__class__.__name__)
            raise SkipSource("outlook_msg_unsupported") from None
    finally:
        msg.close()
    return converted


def _outlook_message(msg: MessageBase, digest: str) -> bytes:
    from email import policy
    from email.utils import format_datetime

    out = msg.asEmailMessage()
    # Headers synthesised from MAPI properties (no transport headers: a sent item, a draft)
    # come with empty values and without Subject or Date; the outer part is multipart now,
    # so the original top-level transfer encoding no longer applies.
    for name in {k for k, v in out.items() if not str(v).strip()} | {"Content-Transfer-Encoding"}:
        del out[name]
    if "Subject" not in out and msg.subject:
        out["Subject"] = msg.subject
    if "Date" not in out and msg.date:
        out["Date"] = format_datetime(msg.date)
    if "MIME-Version" not in out:
        out["MIME-Version"] = "1.0"
    # Boundaries from the file's hash, not random: the same .msg gives the same bytes.
    for n, part in enumerate(out.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_mw_{digest}_{n}")
    return out.as_bytes(policy=policy.SMTP)


# --- importing -----------------------------------------------------------------------------


@dataclass
class ImportSummary:
    """What became of every message and every file: the counts add up to what was seen.

    A message is processed, rejected, failed or a duplicate (`reasons` names the rejected and
    failed ones); a file that holds no message to import is skipped (`skipped_reasons`:
    not_mail, empty, unreadable, outlook_msg_unsupported...).
    """

    processed: int = 0
    rejected: int = 0
    failed: int = 0
    duplicates: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.processed + self.rejected + self.failed + self.duplicates + self.skipped

    def line(self) -> str:
        return (
            f"{self.processed} processed, {self.rejected} rejected, "
            f"{self.failed} failed, {self.duplicates} duplicates, {self.skipped} skipped"
        )

    def count_reason(self, code: str) -> None:
        self.reasons[code] = self.reasons.get(code, 0) + 1

    def count_skipped(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + 1


def _existing_keys(keys: list[str]) -> set[str]:
    try:
        return set(
            RawMessage.objects.filter(idempotency_key__in=keys).values_list(
                "idempotency_key", flat=True
            )
        )
    except DatabaseError as e:
        raise StoreUnavailable(f"database unavailable: {e.__class__.__name__}") from e


def import_mail(
    sources: list[MailSource],
    *,
    user: User,
    batch_size: int = IMPORT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Store and process every message of `sources` for `user`, in batches; count outcomes.

    Raises StoreUnavailable when the store goes down (a re-run resumes where it stopped).
    """
    run = _ImportRun(user, batch_size, progress or (lambda n: None))
    for source in sources:
        seen = 0
        try:
            for label, data in source.messages():
                seen += 1
                run.add(label, data)
        except SkipSource as e:
            run.summary.count_skipped(e.reason)
        except OSError as e:
            # Unreadable (or unreadable from some point on): count the file and go on with the
            # others; a re-run retries it and counts what it read before as duplicates.
            log.warning("import: cannot read a %s source: %s", source.kind, e.__class__.__name__)
            run.summary.count_skipped("unreadable")
        run.progress(max(0, source.count - seen))
    run.flush()
    return run.summary


class _ImportRun:
    def __init__(self, user: User, batch_size: int, progress: Callable[[int], None]) -> None:
        self.user = user
        self.batch_size = batch_size
        self.progress = progress
        self.summary = ImportSummary()
        self.batch: list[RawSpec] = []
        self.seen: set[str] = set()

    def add(self, label: str, data: bytes) -> None:
        key = f"import:{self.user.pk}:{hashlib.sha256(data).hexdigest()}"
        if key in self.seen:  # the same message twice in this run (copied between folders)
            self.summary.duplicates += 1
            self.progress(1)
            return
        self.seen.add(key)
        try:
            check_size(len(data))
        except InputRejected as e:
            self.summary.rejected += 1
            self.summary.count_reason(e.code)
            self.progress(1)
            return
        self.batch.append(
            RawSpec(
                data=data,
                channel=RawMessage.Channel.IMPORT,
                user_id=self.user.pk,
                source=f"import:{label}"[:300],
                idempotency_key=key,
            )
        )
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            _import_batch(self.batch, self.summary)
            self.progress(len(self.batch))
            self.batch = []


def _import_batch(specs: list[RawSpec], summary: ImportSummary) -> None:
    from capture.pipeline import process_raw_messages

    existing = _existing_keys([s.idempotency_key or "" for s in specs])
    new_specs = [s for s in specs if s.idempotency_key not in existing]
    summary.duplicates += len(specs) - len(new_specs)
    if not new_specs:
        return
    rows = store_raw_messages(new_specs, enqueue=False)
    for outcome in process_raw_messages([r.pk for r in rows]):
        if outcome.duplicate:
            summary.duplicates += 1
        elif outcome.status == RawMessage.Status.PROCESSED:
            summary.processed += 1
        elif outcome.status == RawMessage.Status.REJECTED:
            summary.rejected += 1
            summary.count_reason(outcome.reason_code)
        else:
            summary.failed += 1
            summary.count_reason(outcome.reason_code or "failed")
