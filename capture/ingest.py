"""Step 1 of every channel: store the raw bytes, commit, and only then acknowledge.

`store_raw_message` (one) and `store_raw_messages` (a batch in one transaction, for group
commit in the SMTP listener and IMAP sync) are the only things a channel does before it says
yes. Processing is queued on commit; the sweeper re-queues anything whose queue message was
lost, so a message is delayed but never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from capture import queue, storage
from capture.errors import MessageTooLarge, StoreUnavailable
from capture.models import RawMessage

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
    specs: Sequence[RawSpec], *, fsync: bool = True, enqueue: bool = True
) -> list[RawMessage]:
    """Write files, then all rows in one transaction; queue processing after commit.

    With an idempotency key already stored, the existing row is returned instead of a new one.
    Raises StoreUnavailable when the database or the file store cannot take the write.
    """
    if not specs:
        return []
    for spec in specs:
        check_size(len(spec.data))
    try:
        if fsync:
            paths = storage.save_raws_durably([spec.data for spec in specs])
        else:  # the caller has made the files durable already (the SMTP group commit)
            paths = [storage.save_raw(spec.data, fsync=False) for spec in specs]
    except OSError as e:
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
                    result.append(existing[spec.idempotency_key])
                    continue
                row = RawMessage(
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
            RawMessage.objects.bulk_create(new_rows)
            if enqueue and new_rows:
                ids = [r.pk for r in new_rows]
                transaction.on_commit(lambda: queue.enqueue_processing(ids))
    except DatabaseError as e:
        raise StoreUnavailable(f"database unavailable: {e.__class__.__name__}") from e
    return result


def store_raw_message(spec: RawSpec, **kwargs: Any) -> RawMessage:
    """Store one received message (see store_raw_messages)."""
    return store_raw_messages([spec], **kwargs)[0]
