"""Mail that arrives by hand: one message piped by an MTA, or whole exports from mail clients.

- `capture_piped_message`: the MTA pipe transport (`manage.py capture_mime`) stores one message
  and processes it at once, so the exit code can tell the MTA stored / rejected / try later.
- `iter_mail_sources` + `import_mail`: mbox files, Maildir folders and folders of `.eml` files
  (what users export from Thunderbird, Apple Mail, Outlook, mutt...). Each message gets the
  idempotency key `import:<user>:<sha256>`, so a re-run (or a resumed run) stores nothing new.
"""

from __future__ import annotations

import hashlib
import logging
import mailbox
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError

from capture.errors import InputRejected, StoreUnavailable
from capture.intake import RawSpec, check_size, store_raw_message, store_raw_messages
from capture.models import CaptureAddress, RawMessage
from crm.models import User

log = logging.getLogger(__name__)

IMPORT_BATCH = 100
EML_SUFFIXES = {".eml", ".msg822", ".rfc822"}
MBOX_SUFFIXES = {".mbox", ".mbx", ""}


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
        UserAddress.objects.filter(address=normalized, user__is_active=True)
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


@dataclass
class MailSource:
    """One mbox file, Maildir folder or .eml file, and how many messages it holds."""

    path: Path
    kind: str  # "mbox" | "maildir" | "eml"
    count: int

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """(label, bytes) for each message; the label names the file and position only."""
        if self.kind == "eml":
            data = self.path.read_bytes()
            if data.startswith(b"From "):  # an mbox "From " separator line is not a header
                data = data.partition(b"\n")[2]
            yield self.path.name, data
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


def _looks_like_mbox(path: Path) -> bool:
    if path.suffix.lower() not in MBOX_SUFFIXES:
        return False
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def _count_mbox(path: Path) -> int:
    box = mailbox.mbox(path, create=False)
    try:
        return len(box)
    finally:
        box.close()


def _source_for_file(path: Path) -> MailSource | None:
    if _looks_like_mbox(path):
        return MailSource(path, "mbox", _count_mbox(path))
    if path.suffix.lower() in EML_SUFFIXES:
        return MailSource(path, "eml", 1)
    return None


def iter_mail_sources(paths: list[str | Path]) -> list[MailSource]:
    """Every mbox file, Maildir and .eml file under `paths` (folders are walked recursively).

    A path that is neither raises FileNotFoundError (missing) or ValueError (not mail).
    """
    found: list[MailSource] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_file():
            source = _source_for_file(path)
            if source is None and path.stat().st_size:
                # A single file named on the command line is taken as one message.
                source = MailSource(path, "eml", 1)
            if source is None:
                raise ValueError(f"{path}: not an mbox or .eml file")
            found.append(source)
            continue
        for root, dirs, files in os.walk(path):
            here = Path(root)
            if _is_maildir(here):
                box = mailbox.Maildir(here, factory=None, create=False)
                found.append(MailSource(here, "maildir", len(box)))
                # cur/new/tmp belong to this Maildir; Maildir++ subfolders (.Sent) are walked.
                dirs[:] = sorted(d for d in dirs if d not in {"cur", "new", "tmp"})
                continue
            dirs.sort()
            for name in sorted(files):
                source = _source_for_file(here / name)
                if source is not None:
                    found.append(source)
    return found


# --- importing -----------------------------------------------------------------------------


@dataclass
class ImportSummary:
    processed: int = 0
    rejected: int = 0
    failed: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.processed + self.rejected + self.failed + self.duplicates

    def line(self) -> str:
        return (
            f"{self.processed} processed, {self.rejected} rejected, "
            f"{self.failed} failed, {self.duplicates} duplicates"
        )

    def count_reason(self, code: str) -> None:
        self.reasons[code] = self.reasons.get(code, 0) + 1


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
        try:
            for label, data in source.messages():
                run.add(label, data)
        except OSError as e:
            # An unreadable file: count it and go on with the others (a re-run retries it).
            log.warning("import: cannot read a %s source: %s", source.kind, e.__class__.__name__)
            run.summary.failed += 1
            run.summary.count_reason("unreadable")
            run.progress(1)
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
