"""Step 1 of every channel: store the raw bytes, commit, and only then acknowledge.

`store_raw_message` (one) and `store_raw_messages` (a batch in one transaction, for group
commit in the SMTP listener and IMAP sync) are the only things a channel does before it says
yes. Processing is queued on commit; the sweeper re-queues anything whose queue message was
lost, so a message is delayed but never dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from capture import dispatch, storage
from capture.errors import MessageTooLarge, StoreUnavailable
from capture.models import RawMessage
from capture.textsafe import clean_strings
from core.db.bulk import execute_binary, new_row
from governance.audit import record_event

log = logging.getLogger(__name__)


@dataclass
class RawSpec:
    """What a channel knows about one received message."""

    data: bytes
    channel: str
    user_id: int | None = None
    capture_address_id: int | None = None
    mailbox_id: int | None = None
    envelope_from: str = ""
    envelope_to: list[str] = field(default_factory=list)
    source: str = ""
    idempotency_key: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    received_at: Any = None


def check_size(size: int) -> None:
    limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
    if size > limit:
        raise MessageTooLarge(size, limit)


def store_raw_messages(
    specs: Sequence[RawSpec],
    *,
    fsync: bool = True,
    enqueue: bool = True,
    paths: Sequence[tuple[str, str]] | None = None,
) -> list[RawMessage]:
    """Write files, then all rows in one transaction; queue processing after commit.

    `paths`: (sha256, relative path) of files the caller has already made durable (the SMTP
    group commit), one per spec; nothing is written then. With an idempotency key already
    stored, the existing row is returned instead of a new one, with `already_stored = True`.
    Raises StoreUnavailable when the database or the file store cannot take the write.
    """
    if not specs:
        return []
    for spec in specs:
        check_size(len(spec.data))
    # envelope, source, key and options come from outside: storable text (capture/textsafe.py)
    specs = [clean_strings(spec) for spec in specs]
    if paths is None:
        try:
            if fsync:
                paths = storage.save_raws_durably([spec.data for spec in specs])
            else:
                paths = storage.save_raws([spec.data for spec in specs])
        except (OSError, DatabaseError) as e:  # DatabaseError: the data keys of encrypted files
            raise StoreUnavailable(f"raw store not writable: {e.__class__.__name__}") from e
    now = timezone.now()
    try:
        with transaction.atomic():
            keys = [s.idempotency_key for s in specs if s.idempotency_key]
            existing = (
                {r.idempotency_key: r for r in RawMessage.objects.filter(idempotency_key__in=keys)}
                if keys
                else {}
            )
            result: list[RawMessage] = []
            new_rows: list[RawMessage] = []
            for spec, (digest, rel) in zip(specs, paths, strict=True):
                if spec.idempotency_key and spec.idempotency_key in existing:
                    stored = existing[spec.idempotency_key]
                    stored.already_stored = True  # type: ignore[attr-defined]
                    result.append(stored)
                    continue
                # new_row: Model.__init__ was ~0.1 ms a message of a channel's own CPU
                # (bench/ingest.py's producer), on the SMTP and IMAP hot paths too.
                row = new_row(
                    RawMessage,
                    created=now,
                    updated=now,
                    sha256=digest,
                    size=len(spec.data),
                    storage_path=rel,
                    channel=spec.channel,
                    source=spec.source[:300],
                    envelope_from=spec.envelope_from[:320],
                    envelope_to=list(spec.envelope_to),
                    user_id=spec.user_id,
                    capture_address_id=spec.capture_address_id,
                    mailbox_id=spec.mailbox_id,
                    idempotency_key=spec.idempotency_key,
                    options=spec.options,
                    received_at=spec.received_at or now,
                )
                new_rows.append(row)
                result.append(row)
            insert_raw_rows(new_rows)
            if enqueue and new_rows:
                ids = [r.pk for r in new_rows]
                transaction.on_commit(lambda: dispatch.enqueue_processing(ids))
    except DatabaseError as e:
        raise StoreUnavailable(f"database unavailable: {e.__class__.__name__}") from e
    return result


def insert_raw_rows(rows: list[RawMessage]) -> None:
    """INSERT new raw rows and set their pks.

    PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) RETURNING id, built by hand and
    bound server-side in binary. `bulk_create` prepares every field of every row through the
    ORM and quotes every value client-side; on the SMTP listener's and the IMAP sync's hot
    paths (both bound by one process's CPU) that was most of their database time
    (bench/smtp_accept.py, bench/imap_sync.py; capture.bulk.bulk_insert, which still prepares
    every field, measured ~1.5x this one's CPU on raw rows). Elsewhere: bulk_create.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        RawMessage.objects.bulk_create(rows)
        return
    assert RawMessage._meta.db_table == "capture_rawmessage"
    columns = [list(c) for c in zip(*(_raw_row_values(r) for r in rows), strict=True)]
    ids = [pk for (pk,) in execute_binary(_INSERT_RAWS_PG, columns, fetch=True)]
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias


def _raw_row_values(r: RawMessage) -> tuple:
    return (
        r.created,
        r.updated,
        r.sha256,
        r.size,
        r.storage_path,
        r.channel,
        r.source,
        r.envelope_from,
        json.dumps(r.envelope_to),
        r.user_id,
        r.capture_address_id,
        r.mailbox_id,
        r.idempotency_key,
        json.dumps(r.options),
        r.status,
        r.received_at,
    )


# The row order of RETURNING follows the order unnest yields (as Django's own bulk_create
# relies on for multi-row INSERT ... RETURNING on PostgreSQL).
_INSERT_RAWS_PG = """
INSERT INTO capture_rawmessage (created, updated, sha256, size, storage_path, channel, source,
    envelope_from, envelope_to, user_id, capture_address_id, mailbox_id, idempotency_key,
    options, status, received_at, reason_code, reason_detail, attempts, traceback)
SELECT v.created, v.updated, v.sha256, v.size, v.storage_path, v.channel, v.source,
    v.envelope_from, v.envelope_to::jsonb, v.user_id, v.capture_address_id, v.mailbox_id,
    v.idempotency_key, v.options::jsonb, v.status, v.received_at, '', '', 0, ''
FROM unnest(%b::timestamptz[], %b::timestamptz[], %b::text[], %b::bigint[], %b::text[],
            %b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::bigint[],
            %b::bigint[], %b::text[], %b::text[], %b::text[], %b::timestamptz[])
    WITH ORDINALITY AS v(created, updated, sha256, size, storage_path, channel, source,
        envelope_from, envelope_to, user_id, capture_address_id, mailbox_id, idempotency_key,
        options, status, received_at, n)
ORDER BY v.n
RETURNING id
"""


def store_raw_message(spec: RawSpec, **kwargs: Any) -> RawMessage:
    """Store one received message (see store_raw_messages)."""
    return store_raw_messages([spec], **kwargs)[0]


# --- submissions with an idempotency key (the REST API, the add-in) ------------------------


def idempotency_key_for(
    user_id: int, data: bytes, *, client_key: str = "", options: dict[str, Any] | None = None
) -> str:
    """The key that makes a repeated submission answer with the first capture, not a new one.

    A client's own `Idempotency-Key` wins; otherwise the bytes decide, and for the add-in the
    user's choices too, so saving the same mail again with other records is a new capture (the
    pipeline still keeps one message, with a second Capture row).
    """
    if client_key:
        return f"api:{user_id}:key:{client_key}"
    digest = hashlib.sha256(data).hexdigest()
    if options:
        canonical = json.dumps(options, sort_keys=True, separators=(",", ":"))
        return f"addin:{user_id}:{digest}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"
    return f"api:{user_id}:{digest}"


def _stored_with_key(key: str) -> RawMessage | None:
    try:
        return RawMessage.objects.filter(idempotency_key=key).first()
    except DatabaseError as e:
        raise StoreUnavailable(f"database unavailable: {e.__class__.__name__}") from e


def store_raw_message_once(
    spec: RawSpec, *, actor: Any = None, address: str = ""
) -> tuple[RawMessage, bool]:
    """Store a submitted message unless its idempotency key is stored already, with a
    `capture.received` audit event in the same transaction; returns (row, duplicate)."""
    key = spec.idempotency_key or ""
    raw = _stored_with_key(key)
    if raw is not None:
        return raw, True
    try:
        with transaction.atomic():
            raw = store_raw_message(spec)
            record_event(
                "capture.received",
                actor=actor,
                obj=raw,
                channel="api",
                address=address,
                detail={"capture_channel": spec.channel, "size": raw.size, "sha256": raw.sha256},
            )
    except (StoreUnavailable, DatabaseError):
        # A racing identical submission may have taken the unique key first: answer with its row.
        raw = _stored_with_key(key)
        if raw is None:
            raise StoreUnavailable("the raw message could not be stored") from None
        return raw, True
    # Processing may already have run (embedded mode processes right after the commit).
    raw.refresh_from_db(fields=["status"])
    return raw, False
