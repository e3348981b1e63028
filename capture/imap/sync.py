"""IMAP mailbox sync: fetch new mail, store it raw, and only then advance the checkpoint.

Per folder the checkpoint is (UIDVALIDITY, last UID) on MailboxFolder. Each batch is stored
with `store_raw_messages` and the checkpoint advanced in the same transaction, so the
checkpoint never runs ahead of the stored mail; a crash re-fetches at most one batch, which
the per-UID idempotency key absorbs. A UIDVALIDITY change (RFC 3501 2.3.1.1: the old UIDs mean
nothing any more) resets the folder and resyncs the window; messages whose Message-ID this
mailbox already captured are skipped before their bodies are fetched, and the pipeline
dedupes by Message-ID anyway. The server is only ever read: folders are selected read-only
and bodies fetched with BODY.PEEK[], so no flag changes and nothing is deleted.
"""

from __future__ import annotations

import imaplib
import logging
import random
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError, LoginError

from capture import storage
from capture.errors import StoreUnavailable
from capture.imap.credentials import get_secret
from capture.imap.errors import LeaseLost, MailboxAuthFailed, MailboxSyncError, MailboxUnreachable
from capture.imap.folders import parse_folder_list, plan_folders
from capture.imap.lease import acquire_lease, release_lease, renew_lease
from capture.intake import RawSpec, store_raw_messages
from capture.mime import normalize_message_id
from capture.models import MailboxConnection, MailboxFolder, RawMessage
from capture.models.channels import SkippedUid
from governance.audit import record_event
from governance.crypto import SecretDecryptError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (folder, done, total)
SKIPPED_LOG_SIZE = 100
WORKER = "imap-sync"
_MSGID_ITEM = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
_META_ITEMS = ["RFC822.SIZE", "FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
# Without the Message-ID: the server answers from its index, without opening each message.
_META_ITEMS_NO_PRECHECK = ["RFC822.SIZE", "FLAGS"]


@dataclass
class FolderReport:
    name: str
    fetched: int = 0  # bodies downloaded
    stored: int = 0  # new RawMessages committed
    skipped: int = 0  # too large or drafts (see MailboxFolder.skipped_log)
    duplicates: int = 0  # already captured from this mailbox, or already stored for this UID
    resynced: bool = False  # UIDVALIDITY changed: checkpoint reset
    errors: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    mailbox_id: int
    status: str = "ok"  # ok | partial | busy | paused | disabled | auth_failed | error
    error: str = ""
    folders: list[FolderReport] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.folders)

    def summary(self) -> str:
        line = (
            f"mailbox {self.mailbox_id}: {self.status}; folders={len(self.folders)} "
            f"fetched={self.total('fetched')} stored={self.total('stored')} "
            f"skipped={self.total('skipped')} duplicates={self.total('duplicates')}"
        )
        return f"{line}; error: {self.error}" if self.error else line

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- entry point


def sync_mailbox(
    mailbox_id: int, *, progress: Progress | None = None, enqueue: bool = True
) -> SyncReport:
    """Sync one mailbox now; returns "busy" at once when another worker holds it."""
    report = SyncReport(mailbox_id)
    mailbox = MailboxConnection.objects.get(pk=mailbox_id)
    if not mailbox.enabled:
        report.status = "disabled"
        return report
    if mailbox.paused_reason:
        report.status = "paused"
        report.error = mailbox.paused_reason
        return report
    token = acquire_lease(mailbox_id)
    if token is None:
        report.status = "busy"
        return report
    secret = ""
    try:
        secret = get_secret(mailbox)
        with connect_mailbox(mailbox, secret) as client:
            # Leaving the block logs out; a failing LOGOUT is swallowed (the mail is committed).
            _sync_folders(client, mailbox, token, report, progress, enqueue)
    except SecretDecryptError as e:
        _record_auth_failure(mailbox, report, "stored secret cannot be decrypted (key changed?)", e)
    except MailboxAuthFailed as e:
        _record_auth_failure(mailbox, report, scrub_secret(str(e), secret), e)
    except LeaseLost as e:
        report.status = "error"
        report.error = str(e)
    except (MailboxSyncError, StoreUnavailable) as e:
        _record_error(mailbox, report, scrub_secret(str(e), secret))
    except (OSError, IMAPClientError, imaplib.IMAP4.error) as e:
        _record_error(mailbox, report, scrub_secret(describe_error(e), secret))
    else:
        _record_success(mailbox, report)
    finally:
        release_lease(mailbox_id, token)
    return report


# --------------------------------------------------------------------------- connection


# OpenSSL verify codes meaning "no trusted CA vouches for this certificate".
_UNTRUSTED_CODES = {2, 18, 19, 20, 21}  # issuer unknown, self-signed leaf/chain, unverifiable


def describe_error(e: BaseException) -> str:
    """A connection or TLS error in words an admin can act on."""
    if isinstance(e, socket.timeout | TimeoutError):
        return f"timeout: {e}" if str(e) else "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ssl.SSLCertVerificationError):
        message = f"TLS certificate rejected: {e.verify_message or e.reason or e}"
        if e.verify_code in _UNTRUSTED_CODES:
            message += " (not signed by a trusted CA; for a private CA set MAILWARDEN_IMAP_CA_FILE)"
        return message
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e.reason or e}"
    return f"{e.__class__.__name__}: {e}"


def scrub_secret(message: str, secret: str) -> str:
    """Error text for the admin: never the password or token, and short."""
    if secret:
        message = message.replace(secret, "***")
    return message[:500]


@lru_cache(maxsize=4)
def _load_tls_context(cafile: str) -> ssl.SSLContext:
    # Loading the system CA store costs ~40 ms: once per process, not once per run.
    return ssl.create_default_context(cafile=cafile or None)


def _tls_context() -> ssl.SSLContext:
    """Certificates verified and the host name checked; trusted: the system CA store, or
    only the CAs in MAILWARDEN_IMAP_CA_FILE when it is set."""
    cafile = settings.MAILWARDEN_IMAP_CA_FILE
    try:
        context = _load_tls_context(cafile)
    except OSError as e:  # missing, unreadable, or no certificate in it (ssl.SSLError)
        reason = e.reason if isinstance(e, ssl.SSLError) else e.strerror
        raise MailboxSyncError(
            f"MAILWARDEN_IMAP_CA_FILE {cafile!r} cannot be loaded: {reason or e}"
        ) from e
    return context


def connect_mailbox(mailbox: MailboxConnection, secret: str) -> IMAPClient:
    """Connected and logged in; raises MailboxUnreachable or MailboxAuthFailed."""
    Sec = MailboxConnection.Security
    context = _tls_context() if mailbox.security in (Sec.TLS, Sec.STARTTLS) else None
    try:
        client = IMAPClient(
            mailbox.host,
            port=mailbox.port,
            ssl=mailbox.security == Sec.TLS,
            ssl_context=context if mailbox.security == Sec.TLS else None,
            timeout=settings.MAILWARDEN_IMAP_TIMEOUT_SECONDS,
        )
    except (OSError, IMAPClientError, imaplib.IMAP4.error) as e:
        raise MailboxUnreachable(
            f"cannot connect to {mailbox.host}:{mailbox.port}: {describe_error(e)}"
        ) from e
    starttls_pending = mailbox.security == Sec.STARTTLS
    try:
        if starttls_pending:
            client.starttls(context)
            starttls_pending = False
        if mailbox.auth == MailboxConnection.Auth.XOAUTH2:
            client.oauth2_login(mailbox.username, secret)
        else:
            client.login(mailbox.username, secret)
    except LoginError as e:
        _shutdown(client)
        cause = e.__context__  # imapclient re-raises any failure of the login command as LoginError
        if isinstance(cause, imaplib.IMAP4.abort | OSError):
            # The connection broke during LOGIN/AUTHENTICATE: the server refused nothing.
            raise MailboxUnreachable(
                scrub_secret(f"connection lost while logging in: {describe_error(cause)}", secret)
            ) from e
        raise MailboxAuthFailed(f"authentication failed: {scrub_secret(str(e), secret)}") from e
    except (OSError, IMAPClientError, imaplib.IMAP4.error) as e:
        _shutdown(client)
        where = f"{mailbox.host}:{mailbox.port}"
        if starttls_pending and isinstance(e, CapabilityError):
            # Checked before anything is sent: no login in clear follows.
            raise MailboxUnreachable(
                f"{where} does not offer STARTTLS (nothing sent in clear)"
            ) from e
        if starttls_pending:
            raise MailboxUnreachable(f"STARTTLS with {where} failed: {describe_error(e)}") from e
        raise MailboxUnreachable(describe_error(e)) from e
    return client


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except (OSError, IMAPClientError, imaplib.IMAP4.error):
        pass


# --------------------------------------------------------------------------- folders


def _sync_folders(
    client: IMAPClient,
    mailbox: MailboxConnection,
    token: str,
    report: SyncReport,
    progress: Progress | None,
    enqueue: bool,
) -> None:
    excluded = [*settings.MAILWARDEN_IMAP_EXCLUDED_FOLDERS, *(mailbox.excluded_folders or [])]
    plan = plan_folders(parse_folder_list(client.list_folders()), mailbox.folders or [], excluded)
    report.excluded = list(plan.excluded)
    for name in plan.missing:
        report.folders.append(FolderReport(name, errors=["folder not found on the server"]))
        report.status = "partial"
    for name in plan.sync:
        folder_report = FolderReport(name)
        report.folders.append(folder_report)
        try:
            _sync_folder(client, mailbox, name, token, folder_report, progress, enqueue)
        except imaplib.IMAP4.abort:
            raise  # the connection is gone: no other folder can be synced in this run
        except (IMAPClientError, imaplib.IMAP4.error) as e:
            # A NO/BAD for this folder (deleted meanwhile, no permission): the others still sync.
            folder_report.errors.append(describe_error(e))
            report.status = "partial"


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _folder_state(mailbox: MailboxConnection, name: str) -> MailboxFolder:
    state, _ = MailboxFolder.objects.get_or_create(mailbox=mailbox, name=name)
    return state


def _sync_folder(
    client: IMAPClient,
    mailbox: MailboxConnection,
    name: str,
    token: str,
    report: FolderReport,
    progress: Progress | None,
    enqueue: bool,
) -> None:
    selected = client.select_folder(name, readonly=True)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    uidnext = int(selected[b"UIDNEXT"]) if selected.get(b"UIDNEXT") else None
    state = _folder_state(mailbox, name)
    if state.uidvalidity != uidvalidity:
        if state.uidvalidity is not None:
            report.resynced = True
            log.info("mailbox %s folder #%s: UIDVALIDITY changed, resyncing", mailbox.pk, state.pk)
        with transaction.atomic():
            renew_lease(mailbox.pk, token)
            state.uidvalidity = uidvalidity
            state.last_uid = 0
            state.last_synced_at = None  # the first pass (within the window) starts again
            state.window_since, state.window_last_uid = None, 0
            state.save(
                update_fields=[
                    "uidvalidity", "last_uid", "last_synced_at", "window_since",
                    "window_last_uid", "updated",
                ]
            )  # fmt: skip
            # The old UIDs mean nothing any more: neither do their skip records.
            SkippedUid.objects.filter(folder=state).exclude(uidvalidity=uidvalidity).delete()
            if report.resynced:
                record_event(
                    "mailbox.uidvalidity_reset", actor=WORKER, obj=state, channel="imap",
                    detail={"mailbox": mailbox.pk, "uidvalidity": uidvalidity},
                )  # fmt: skip

    first_pass = state.last_synced_at is None
    since = (timezone.now() - timedelta(days=mailbox.sync_window_days)).date()
    if not first_pass and uidnext is not None and uidnext <= state.last_uid + 1:
        uids: list[int] = []  # nothing new: no SEARCH round trip
    else:
        criteria: list[Any] = []
        if state.last_uid:
            criteria += ["UID", f"{state.last_uid + 1}:*"]
        if first_pass:
            criteria += ["SINCE", since]
        # "N:*" matches the highest UID even when it is below N (RFC 3501 6.4.8): filter.
        uids = sorted(u for u in client.search(criteria or ["ALL"]) if u > state.last_uid)

    total = len(uids)
    done = 0
    if progress:
        progress(name, 0, total)
    # A pipeline: the IMAP commands run on a fetch thread and the files are written by the
    # store's threads (socket and file I/O release the GIL), while this thread does the
    # database work (its connection, its transaction). For batch N: its bodies, then batch
    # N+1's metadata, download while batch N-1's rows and checkpoint are committed; its files
    # are written while batch N+1 is planned. Files before rows, rows with the checkpoint: the order that makes
    # a crash safe is unchanged. Only one thread uses the IMAP connection at a time.
    batches = list(_chunks(uids, max(1, settings.MAILWARDEN_IMAP_BATCH_SIZE)))
    pending: tuple[_Fetched, Future] | None = None

    def commit_pending() -> None:
        nonlocal pending, done
        if pending is None:
            return
        batch, pending = pending, None
        done += _commit_batch(mailbox, state, token, report, enqueue, *batch)
        if progress:
            progress(name, done, total)

    with (
        ThreadPoolExecutor(1, thread_name_prefix="mailwarden-imap-fetch") as imap,
        ThreadPoolExecutor(1, thread_name_prefix="mailwarden-imap-files") as files,
    ):
        try:
            # The Message-ID pre-check can only skip mail this mailbox captured before: for a
            # mailbox with nothing captured yet (a first sync) it is left out altogether.
            precheck = bool(batches) and _has_captured(mailbox)
            items = _META_ITEMS if precheck else _META_ITEMS_NO_PRECHECK
            meta = imap.submit(client.fetch, batches[0], items) if batches else None
            for i, batch in enumerate(batches):
                plan = _plan_batch(mailbox, uidvalidity, batch, meta.result(), report)
                bodies = imap.submit(client.fetch, plan.wanted, ["BODY.PEEK[]"])
                if i + 1 < len(batches):  # queued behind the bodies: the thread never waits
                    meta = imap.submit(client.fetch, batches[i + 1], items)
                commit_pending()
                fetched = _collect_batch(mailbox, state, uidvalidity, plan, bodies.result(), report)
                written = files.submit(_write_files, fetched.specs)
                pending = (fetched, written)
        except (StoreUnavailable, LeaseLost, DatabaseError):
            raise  # the store or the lease failed: what is pending is fetched again next run
        except BaseException:
            commit_pending()  # e.g. the server dropped the connection: keep what was fetched
            raise
        commit_pending()

    # Everything below UIDNEXT (as of SELECT) was searched: the checkpoint may jump there, so
    # the next run with nothing new answers from SELECT alone.
    with transaction.atomic():
        renew_lease(mailbox.pk, token)
        if uidnext is not None:
            state.last_uid = max(state.last_uid, uidnext - 1)
        state.last_synced_at = timezone.now()
        if first_pass:
            # Up to here, mail before `since` was left out on purpose (reconciliation needs to
            # know). An interrupted first pass is resumed with a later date: the last one counts.
            state.window_since, state.window_last_uid = since, state.last_uid
        state.save(
            update_fields=[
                "last_uid", "last_synced_at", "window_since", "window_last_uid", "updated",
            ]
        )  # fmt: skip


def _has_captured(mailbox: MailboxConnection) -> bool:
    """Whether any mail synced from this mailbox has been processed into a message."""
    return RawMessage.objects.filter(mailbox=mailbox, email__isnull=False).exists()


def _already_captured(mailbox: MailboxConnection, message_ids: set[str]) -> set[str]:
    """Message-IDs this mailbox already captured (so a resync fetches no body twice)."""
    if not message_ids:
        return set()
    return set(
        RawMessage.objects.filter(mailbox=mailbox, email__message_id__in=message_ids).values_list(
            "email__message_id", flat=True
        )
    )


@dataclass
class _Fetched:
    """One batch fetched from the server, not yet stored."""

    batch: list[int]
    specs: list[RawSpec]
    skipped: list[dict[str, Any]]
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # already captured


def _write_files(specs: list[RawSpec]) -> list[tuple[str, str]]:
    """The batch's raw files, durable (one syncfs); runs in the file thread."""
    try:
        return storage.save_raws_durably([s.data for s in specs]) if specs else []
    except OSError as e:
        raise StoreUnavailable(f"raw store not writable: {e.__class__.__name__}") from e


@dataclass
class _Plan:
    """A batch after its metadata: what to download, what was skipped."""

    batch: list[int]
    wanted: list[int]
    skipped: list[dict[str, Any]]
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # already captured


def _skip_entry(uid: int, uidvalidity: int, size: int, reason: str, now) -> dict[str, Any]:
    """One line of MailboxFolder.skipped_log."""
    return {
        "uid": uid,
        "uidvalidity": uidvalidity,
        "size": size,
        "reason": reason,
        "at": now.isoformat(),
    }


def _plan_batch(
    mailbox: MailboxConnection,
    uidvalidity: int,
    batch: list[int],
    meta: dict,
    report: FolderReport,
) -> _Plan:
    """Skip drafts, oversize mail and mail this mailbox already captured (from the FETCH of
    RFC822.SIZE, FLAGS and the Message-ID header)."""
    limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
    now = timezone.now()
    skipped: list[dict[str, Any]] = []
    candidates: dict[int, str] = {}
    sizes: dict[int, int] = {}
    for uid in batch:
        item = meta.get(uid)
        if item is None:
            continue  # expunged between SEARCH and FETCH: nothing to capture
        size = int(item.get(b"RFC822.SIZE") or 0)
        flags = {
            f.lower() if isinstance(f, bytes) else f.encode().lower()
            for f in item.get(b"FLAGS", ())
        }
        reason = ""
        if b"\\draft" in flags:
            reason = "draft"
        elif size > limit:
            reason = "too_large"
        if reason:
            skipped.append(_skip_entry(uid, uidvalidity, size, reason, now))
            continue
        header = item.get(_MSGID_ITEM) or b""
        value = header.decode("utf-8", "replace").partition(":")[2] if header else ""
        candidates[uid] = normalize_message_id(value.strip())
        sizes[uid] = size

    known = _already_captured(mailbox, {m for m in candidates.values() if m})
    wanted = [uid for uid, mid in candidates.items() if not (mid and mid in known)]
    duplicates = [
        _skip_entry(uid, uidvalidity, sizes[uid], SkippedUid.Reason.ALREADY_CAPTURED, now)
        for uid, mid in candidates.items()
        if mid and mid in known
    ]
    report.duplicates += len(duplicates)
    return _Plan(batch, wanted, skipped, duplicates)


def _collect_batch(
    mailbox: MailboxConnection,
    state: MailboxFolder,
    uidvalidity: int,
    plan: _Plan,
    bodies: dict,
    report: FolderReport,
) -> _Fetched:
    """The downloaded bodies as raw specs (a body over the limit is skipped after all)."""
    limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
    now = timezone.now()
    skipped = list(plan.skipped)
    specs: list[RawSpec] = []
    for uid in plan.wanted:
        data = (bodies.get(uid) or {}).get(b"BODY[]")
        if data is None:
            continue  # expunged meanwhile
        if len(data) > limit:  # RFC822.SIZE understated it
            skipped.append(_skip_entry(uid, uidvalidity, len(data), "too_large", now))
            continue
        key = f"imap:{mailbox.pk}:{state.name}:{uidvalidity}:{uid}"
        specs.append(
            RawSpec(
                data=bytes(data), channel=RawMessage.Channel.IMAP, user_id=mailbox.owner_id,
                mailbox_id=mailbox.pk, source=key, idempotency_key=key[:200],
            )
        )  # fmt: skip
    report.fetched += len(specs)
    return _Fetched(plan.batch, specs, skipped, plan.duplicates)


def _commit_batch(
    mailbox: MailboxConnection,
    state: MailboxFolder,
    token: str,
    report: FolderReport,
    enqueue: bool,
    fetched: _Fetched,
    written: Future,
) -> int:
    """Rows and checkpoint of a fetched batch in one transaction, once its files are
    durable; returns the batch's size (for progress)."""
    paths = written.result()  # raises StoreUnavailable when the files could not be written
    specs, skipped = fetched.specs, fetched.skipped
    try:
        with transaction.atomic():
            renew_lease(mailbox.pk, token)  # fence: a worker that lost the mailbox cannot commit
            rows = store_raw_messages(specs, enqueue=enqueue, paths=paths)
            existing = sum(getattr(r, "already_stored", False) for r in rows)
            new = len(specs) - existing
            state.last_uid = max(state.last_uid, max(fetched.batch))
            state.messages_synced += new
            if skipped:
                state.skipped += len(skipped)
                state.skipped_log = [*(state.skipped_log or []), *skipped][-SKIPPED_LOG_SIZE:]
            state.save(
                update_fields=["last_uid", "messages_synced", "skipped", "skipped_log", "updated"]
            )
            _record_skipped_uids(state, [*skipped, *fetched.duplicates])
    except DatabaseError as e:
        raise StoreUnavailable(f"database unavailable: {e.__class__.__name__}") from e
    report.stored += new
    report.duplicates += existing
    report.skipped += len(skipped)
    return len(fetched.batch)


def _record_skipped_uids(state: MailboxFolder, entries: list[dict[str, Any]]) -> None:
    """Every skipped UID with its reason (skipped_log keeps only the last 100)."""
    if not entries:
        return
    SkippedUid.objects.bulk_create(
        [
            SkippedUid(
                folder=state, uidvalidity=e["uidvalidity"], uid=e["uid"], reason=e["reason"],
                size=e["size"],
            )
            for e in entries
        ],
        ignore_conflicts=True,  # a batch fetched again after a crash
    )  # fmt: skip


def fetch_uids(
    client: IMAPClient,
    mailbox: MailboxConnection,
    state: MailboxFolder,
    uidvalidity: int,
    uids: Sequence[int],
    token: str,
    report: FolderReport,
    *,
    enqueue: bool = True,
) -> None:
    """Fetch these UIDs of the selected folder through the sync's plan, store and commit path."""
    precheck = _has_captured(mailbox)
    items = _META_ITEMS if precheck else _META_ITEMS_NO_PRECHECK
    for batch in _chunks(sorted(uids), max(1, settings.MAILWARDEN_IMAP_BATCH_SIZE)):
        plan = _plan_batch(mailbox, uidvalidity, batch, client.fetch(batch, items), report)
        bodies = client.fetch(plan.wanted, ["BODY.PEEK[]"]) if plan.wanted else {}
        fetched = _collect_batch(mailbox, state, uidvalidity, plan, bodies, report)
        written: Future = Future()
        written.set_result(_write_files(fetched.specs))
        _commit_batch(mailbox, state, token, report, enqueue, fetched, written)


# --------------------------------------------------------------------------- outcome


def retry_delay(consecutive_errors: int) -> timedelta:
    """Exponential backoff from one minute, capped, with 10% jitter (no thundering herd)."""
    base = min(60 * 2 ** max(0, consecutive_errors - 1), settings.MAILWARDEN_IMAP_RETRY_MAX_SECONDS)
    return timedelta(seconds=base * (1 + random.random() / 10))


def _record_success(mailbox: MailboxConnection, report: SyncReport) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {
        "last_sync_at": now,
        "next_sync_at": now + timedelta(minutes=mailbox.interval_minutes),
        "consecutive_auth_failures": 0,
        "consecutive_errors": 0,
    }
    if report.status == "ok":
        fields.update(last_error="", last_error_at=None)
    else:
        errors = [f"{f.name}: {e}" for f in report.folders for e in f.errors]
        fields.update(last_error="; ".join(errors)[:500], last_error_at=now)
    MailboxConnection.objects.filter(pk=mailbox.pk).update(**fields)


def _record_error(mailbox: MailboxConnection, report: SyncReport, message: str) -> None:
    report.status = "error"
    report.error = message
    log.warning("mailbox %s sync failed: %s", mailbox.pk, message)
    now = timezone.now()
    with transaction.atomic():
        row = MailboxConnection.objects.select_for_update().get(pk=mailbox.pk)
        row.consecutive_errors += 1
        row.last_error = message
        row.last_error_at = now
        row.next_sync_at = now + retry_delay(row.consecutive_errors)
        row.save(
            update_fields=[
                "consecutive_errors",
                "last_error",
                "last_error_at",
                "next_sync_at",
                "updated",
            ]
        )


def _record_auth_failure(
    mailbox: MailboxConnection, report: SyncReport, message: str, error: BaseException
) -> None:
    report.status = "auth_failed"
    report.error = message
    log.warning("mailbox %s authentication failed", mailbox.pk)
    now = timezone.now()
    with transaction.atomic():
        row = MailboxConnection.objects.select_for_update().get(pk=mailbox.pk)
        row.consecutive_auth_failures += 1
        row.consecutive_errors += 1
        row.last_error = message
        row.last_error_at = now
        row.next_sync_at = now + retry_delay(row.consecutive_errors)
        limit = settings.MAILWARDEN_IMAP_MAX_AUTH_FAILURES
        if row.consecutive_auth_failures >= limit and not row.paused_reason:
            row.paused_reason = (
                f"Paused after {row.consecutive_auth_failures} failed logins in a row "
                "(password or token wrong or expired). Update it, then resume."
            )[:200]
            record_event(
                "mailbox.paused", actor=WORKER, obj=row, channel="imap",
                detail={"reason": "auth_failures", "count": row.consecutive_auth_failures},
            )  # fmt: skip
        row.save(
            update_fields=[
                "consecutive_auth_failures", "consecutive_errors", "last_error", "last_error_at",
                "next_sync_at", "paused_reason", "updated",
            ]
        )  # fmt: skip
