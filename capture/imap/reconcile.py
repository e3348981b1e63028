"""IMAP reconciliation: does every UID on the server have a fate on record?

For each synced folder, the server's UID list (one `UID SEARCH ALL`) is compared with what
sync recorded. A UID at or below the folder's checkpoint is accounted for when it was stored
(a raw message under the sync's idempotency key, processed into a message or still waiting
for it), skipped on purpose (a SkippedUid row: too large, draft, already captured; or older
than the first pass's window), or rejected by the pipeline (with its reason code). Anything
else is the gap: mail the account shows as synced but that Mailwarden does not have (0 for a
healthy mailbox). UIDs above the checkpoint are not synced yet: "pending", not a gap. After a
UIDVALIDITY change the old records mean nothing: the folder is reported as due for a resync.

`fetch_missing=True` fetches the gap through the sync's own store path (skip rules, durable
files, rows, processing queued on commit), then counts again. The comparison runs in chunks
of UIDs against the unique indexes (idempotency key, folder/UIDVALIDITY/UID), so a folder of
100k messages costs a few hundred queries, not one per message. See docs/imap.md.
"""

from __future__ import annotations

import imaplib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from capture.errors import StoreUnavailable
from capture.imap.credentials import get_secret
from capture.imap.errors import LeaseLost, MailboxAuthFailed, MailboxSyncError
from capture.imap.folders import parse_folder_list, plan_folders
from capture.imap.lease import acquire_lease, release_lease, renew_lease
from capture.imap.sync import (
    FolderReport,
    connect_mailbox,
    describe_error,
    fetch_uids,
    scrub_secret,
)
from capture.models import MailboxConnection, MailboxFolder, RawMessage
from capture.models.channels import SkippedUid
from governance.audit import record_event
from governance.crypto import SecretDecryptError

log = logging.getLogger(__name__)

CHUNK = 1000  # UIDs per database lookup
GAP_UIDS_SHOWN = 1000  # the report lists at most this many missing UIDs per folder (count: all)
BEFORE_WINDOW = "before_window"
Status = RawMessage.Status


@dataclass
class FolderReconcile:
    name: str
    uidvalidity: int | None = None
    checkpoint: int = 0  # the folder's last synced UID
    server: int = 0  # UIDs on the server now
    checked: int = 0  # of those, at or below the checkpoint
    stored: int = 0  # a raw message under its key (processed into a message, or to be)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    rejected: dict[str, int] = field(default_factory=dict)  # reason code -> count
    pending: int = 0  # above the checkpoint: not synced yet
    gap: int = 0  # neither stored nor accounted for
    gap_uids: list[int] = field(default_factory=list)  # the first GAP_UIDS_SHOWN of them
    fetched: int = 0  # stored again by fetch_missing
    resync: bool = False  # UIDVALIDITY changed: the next sync re-syncs the folder
    not_synced: bool = False  # the first pass has not finished yet: everything is pending
    error: str = ""

    def line(self) -> str:
        """One line for the command and the admin."""
        if self.error:
            return f"{self.name}: error: {self.error}"
        if self.resync:
            return f"{self.name}: UIDVALIDITY changed, the next sync re-syncs it (server={self.server})"
        parts = [
            f"{self.name}: server={self.server} checked={self.checked} stored={self.stored}",
            f"skipped={sum(self.skipped.values())}{_reasons(self.skipped)}",
            f"rejected={sum(self.rejected.values())}{_reasons(self.rejected)}",
            f"pending={self.pending}",
        ]
        if self.fetched:
            parts.append(f"fetched={self.fetched}")
        parts.append(f"gap={self.gap}")
        return " ".join(parts)


@dataclass
class ReconcileReport:
    mailbox_id: int
    status: str = "ok"  # ok | partial | busy | paused | disabled | auth_failed | error
    error: str = ""
    fetch_missing: bool = False
    folders: list[FolderReconcile] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.status in ("ok", "partial")

    def total(self, name: str) -> int:
        values = (getattr(f, name) for f in self.folders)
        return sum(sum(v.values()) if isinstance(v, dict) else int(v) for v in values)

    @property
    def gap(self) -> int:
        return self.total("gap")

    def summary(self) -> str:
        line = f"mailbox {self.mailbox_id}: {self.status}"
        if self.completed:
            line += (
                f"; folders={len(self.folders)} stored={self.total('stored')} "
                f"skipped={self.total('skipped')} rejected={self.total('rejected')} "
                f"pending={self.total('pending')}"
            )
            if self.fetch_missing:
                line += f" fetched={self.total('fetched')}"
            line += f" gap={self.gap}"
        return f"{line}; error: {self.error}" if self.error else line

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gap"] = self.gap
        data["pending"] = self.total("pending")
        data["fetched"] = self.total("fetched")
        return data


def _reasons(counts: dict[str, int]) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in sorted(counts.items()))})" if counts else ""


# --------------------------------------------------------------------------- entry point


def reconcile_mailbox(
    mailbox_id: int,
    *,
    fetch_missing: bool = False,
    actor: Any = None,
    channel: str = "",
    address: str = "",
) -> ReconcileReport:
    """Compare each synced folder's UIDs on the server with what was stored, skipped or rejected."""
    report = ReconcileReport(mailbox_id, fetch_missing=fetch_missing)
    mailbox = MailboxConnection.objects.get(pk=mailbox_id)
    if not mailbox.enabled:
        report.status = "disabled"
        return report
    if mailbox.paused_reason:
        report.status, report.error = "paused", mailbox.paused_reason
        return report
    token = acquire_lease(mailbox_id)  # no sync may move a checkpoint while we count
    if token is None:
        report.status = "busy"
        return report
    secret = ""
    try:
        secret = get_secret(mailbox)
        with connect_mailbox(mailbox, secret) as client:
            _reconcile_folders(client, mailbox, token, report)
    except SecretDecryptError:
        report.status, report.error = "auth_failed", "stored secret cannot be decrypted"
    except MailboxAuthFailed as e:
        report.status, report.error = "auth_failed", scrub_secret(str(e), secret)
    except LeaseLost as e:
        report.status, report.error = "error", str(e)
    except (MailboxSyncError, StoreUnavailable) as e:
        report.status, report.error = "error", scrub_secret(str(e), secret)
    except (OSError, IMAPClientError, imaplib.IMAP4.error) as e:
        report.status, report.error = "error", scrub_secret(describe_error(e), secret)
    finally:
        release_lease(mailbox_id, token)
    if report.completed:
        _record_result(mailbox, report, actor=actor, channel=channel, address=address)
    else:
        log.warning("mailbox %s reconciliation: %s %s", mailbox_id, report.status, report.error)
    return report


def _record_result(
    mailbox: MailboxConnection, report: ReconcileReport, *, actor: Any, channel: str, address: str
) -> None:
    """The mailbox's last result, and an audit event with counts only."""
    with transaction.atomic():
        MailboxConnection.objects.filter(pk=mailbox.pk).update(
            last_reconciled_at=timezone.now(), reconcile_gap=report.gap
        )
        record_event(
            "mailbox.reconciled", actor=actor, obj=mailbox, channel=channel, address=address,
            detail={
                "status": report.status,
                "folders": len(report.folders),
                "checked": report.total("checked"),
                "stored": report.total("stored"),
                "skipped": report.total("skipped"),
                "rejected": report.total("rejected"),
                "pending": report.total("pending"),
                "gap": report.gap,
                "fetch_missing": report.fetch_missing,
                "fetched": report.total("fetched"),
                "resync": sum(f.resync for f in report.folders),
            },
        )  # fmt: skip


# --------------------------------------------------------------------------- folders


def _reconcile_folders(
    client: IMAPClient, mailbox: MailboxConnection, token: str, report: ReconcileReport
) -> None:
    excluded = [*settings.MAILWARDEN_IMAP_EXCLUDED_FOLDERS, *(mailbox.excluded_folders or [])]
    plan = plan_folders(parse_folder_list(client.list_folders()), mailbox.folders or [], excluded)
    report.excluded = list(plan.excluded)
    for name in plan.missing:
        report.folders.append(FolderReconcile(name, error="folder not found on the server"))
        report.status = "partial"
    for name in plan.sync:
        folder = FolderReconcile(name)
        report.folders.append(folder)
        try:
            renew_lease(mailbox.pk, token)
            _reconcile_folder(client, mailbox, token, folder, report.fetch_missing)
        except imaplib.IMAP4.abort:
            raise  # the connection is gone
        except (IMAPClientError, imaplib.IMAP4.error) as e:
            folder.error = describe_error(e)
            report.status = "partial"


def _reconcile_folder(
    client: IMAPClient,
    mailbox: MailboxConnection,
    token: str,
    report: FolderReconcile,
    fetch_missing: bool,
) -> None:
    selected = client.select_folder(report.name, readonly=True)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    report.uidvalidity = uidvalidity
    state = MailboxFolder.objects.filter(mailbox=mailbox, name=report.name).first()
    server = sorted(client.search(["ALL"]))
    report.server = len(server)
    if state is None or state.uidvalidity is None or state.last_synced_at is None:
        report.not_synced = True  # no finished first pass yet: nothing is due
        report.pending = len(server)
        return
    if state.uidvalidity != uidvalidity:
        report.resync = True  # what was recorded is about other UIDs
        report.pending = len(server)
        return
    missing = _account(client, mailbox, state, uidvalidity, server, report)
    if not (fetch_missing and missing):
        return
    _release_lost_rows(mailbox, token, missing)
    fetch = FolderReport(report.name)
    fetch_uids(client, mailbox, state, uidvalidity, list(missing), token, fetch)
    report.fetched = fetch.stored
    # Count again, from the server's list as it is now (a UID may have been expunged meanwhile).
    server = sorted(client.search(["ALL"]))
    report.server = len(server)
    _account(client, mailbox, state, uidvalidity, server, report)


def _account(
    client: IMAPClient,
    mailbox: MailboxConnection,
    state: MailboxFolder,
    uidvalidity: int,
    server: Sequence[int],
    report: FolderReconcile,
) -> dict[int, int | None]:
    """Set the counts; returns the gap as {uid: id of a raw row whose message is gone, or None}."""
    checkpoint = state.last_uid
    report.checkpoint = checkpoint
    checked = [uid for uid in server if uid <= checkpoint]
    report.checked = len(checked)
    report.pending = len(server) - len(checked)
    report.stored = 0
    before_window = _before_window(client, state)
    skipped: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    missing: dict[int, int | None] = {}
    prefix = f"imap:{mailbox.pk}:{state.name}:{uidvalidity}:"
    for chunk in _chunks(checked, CHUNK):
        keys = {(prefix + str(uid))[:200]: uid for uid in chunk}
        raws = {
            keys[key]: (pk, status, code, email_id)
            for key, pk, status, code, email_id in RawMessage.objects.filter(
                idempotency_key__in=list(keys)
            ).values_list("idempotency_key", "pk", "status", "reason_code", "email_id")
        }
        skips = dict(
            SkippedUid.objects.filter(
                folder=state, uidvalidity=uidvalidity, uid__gte=chunk[0], uid__lte=chunk[-1]
            ).values_list("uid", "reason")
        )
        for uid in chunk:
            raw = raws.get(uid)
            lost_raw = None
            if raw is not None:
                pk, status, code, email_id = raw
                if status == Status.PENDING or (status == Status.PROCESSED and email_id):
                    report.stored += 1
                    continue
                if status == Status.REJECTED:
                    rejected[code or "rejected"] += 1
                    continue
                if status == Status.FAILED:
                    rejected[f"failed:{code or 'error'}"] += 1
                    continue
                if status == Status.DISCARDED:
                    rejected["discarded"] += 1
                    continue
                lost_raw = pk  # processed, but its message has been deleted since
            if uid in skips:
                skipped[skips[uid]] += 1
            elif uid in before_window:
                skipped[BEFORE_WINDOW] += 1
            else:
                missing[uid] = lost_raw
    report.skipped, report.rejected = dict(skipped), dict(rejected)
    report.gap = len(missing)
    report.gap_uids = sorted(missing)[:GAP_UIDS_SHOWN]
    return missing


def _before_window(client: IMAPClient, state: MailboxFolder) -> set[int]:
    """UIDs the first pass left out on purpose: dated before its window, up to where it ran."""
    if not state.window_since or not state.window_last_uid:
        return set()
    criteria = ["UID", f"1:{state.window_last_uid}", "BEFORE", state.window_since]
    return {uid for uid in client.search(criteria) if uid <= state.window_last_uid}


def _release_lost_rows(
    mailbox: MailboxConnection, token: str, missing: dict[int, int | None]
) -> None:
    """A raw row whose message was deleted keeps the UID's idempotency key: free it, so the
    fetch stores a new row instead of finding the old one "already stored"."""
    ids = [pk for pk in missing.values() if pk is not None]
    if not ids:
        return
    try:
        with transaction.atomic():
            renew_lease(mailbox.pk, token)
            RawMessage.objects.filter(
                pk__in=ids, status=Status.PROCESSED, email__isnull=True
            ).update(idempotency_key=None, updated=timezone.now())
    except DatabaseError as e:
        raise StoreUnavailable(f"database unavailable: {e.__class__.__name__}") from e


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
