"""The append-only, hash-chained audit log. Every app may call this module (it is a leaf).

Writers insert events freely (no lock, no read of the previous row), so the capture workers
never wait on each other. `seal_pending_events` later links unsealed rows into the chain in
the order it seals them (`seal_seq`), each storing the previous event's hash. A row that
commits late simply gets sealed in a later batch. `verify_chain` recomputes the chain from
the newest `AuditAnchor` (or the start), so retention can drop old segments later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max, Min

from core.db.bulk import bulk_insert, new_row
from governance.models import AuditAnchor, AuditEvent

GENESIS = "0" * 64
_SEAL_LOCK_ID = 0x4D57_4155  # "MWAU": pg advisory lock id for the sealer


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, an API token, or a named worker/system process."""

    type: str
    user_id: int | None = None
    label: str = ""

    @classmethod
    def of(cls, who: Any) -> Actor:
        """An actor from a user, an API token (anything with `audit_actor_label`), a worker's
        name, or nothing. Duck-typed, so this module imports no app's models (it is a leaf
        every app may call: docs/architecture.md, "Layers")."""
        if isinstance(who, Actor):
            return who
        token_label = getattr(who, "audit_actor_label", None)
        if token_label is not None:
            return cls(AuditEvent.ActorType.TOKEN, who.user_id, token_label)
        if isinstance(who, AbstractBaseUser):
            return cls(AuditEvent.ActorType.USER, who.pk, who.get_username())
        if isinstance(who, str):
            return cls(AuditEvent.ActorType.WORKER, None, who)
        return cls(AuditEvent.ActorType.SYSTEM, None, "system")


def actor_from_request(request: Any) -> Actor:
    auth = getattr(request, "auth", None)
    if getattr(auth, "audit_actor_label", None) is not None:
        return Actor.of(auth)
    user = getattr(request, "user", None)
    return Actor.of(user if user is not None and user.is_authenticated else None)


def client_address(request: Any) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:64] if request is not None else ""


def _object_ref(obj: Any) -> tuple[str, str]:
    if obj is None:
        return "", ""
    meta = getattr(obj, "_meta", None)
    kind = f"{meta.app_label}.{meta.model_name}" if meta else type(obj).__name__
    return kind, str(getattr(obj, "pk", "") or "")


def build_event(
    action: str,
    *,
    actor: Any = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    channel: str = "",
    address: str = "",
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """An unsaved event (for bulk inserts). Detail must hold no raw addresses or bodies."""
    who = Actor.of(actor)
    otype, oid = _object_ref(obj)
    return new_row(
        AuditEvent,
        actor_type=who.type,
        actor_user_id=who.user_id,
        actor_label=who.label[:200],
        action=action,
        object_type=object_type or otype,
        object_id=str(object_id or oid),
        channel=channel,
        address=address[:64],
        detail=dict(detail or {}),
    )


# --- listeners ------------------------------------------------------------------------------
# An upper module that must act on every recorded change, in the change's own transaction,
# registers here (this module imports no app: the listener comes to it). The outbound webhooks'
# outbox (governance/outbound/outbox.py) is one: it writes its rows next to the audit event,
# so an event is never lost between the change's commit and a queue.

EventListener = Callable[[Sequence[AuditEvent]], None]
_listeners: list[EventListener] = []


def register_event_listener(fn: EventListener) -> EventListener:
    """Call `fn(events)` with every batch of events just inserted, inside the inserting
    transaction (an error in `fn` rolls the change back with its event). Idempotent."""
    if fn not in _listeners:
        _listeners.append(fn)
    return fn


def unregister_event_listener(fn: EventListener) -> None:
    """Remove a listener registered with :func:`register_event_listener` (tests use this)."""
    if fn in _listeners:
        _listeners.remove(fn)


def record_event(action: str, **kwargs: Any) -> AuditEvent:
    """Append one audit event (inside the caller's transaction, so it commits with the change)."""
    event = build_event(action, **kwargs)
    if not _listeners:
        event.save(force_insert=True)
        return event
    # A caller in autocommit still gets the event and what its listeners write in one commit.
    with transaction.atomic(savepoint=False):
        event.save(force_insert=True)
        for fn in list(_listeners):
            fn((event,))
    return event


def record_events(events: Iterable[AuditEvent]) -> None:
    """Append several events in one statement; they get their primary keys, as with
    bulk_create. On PostgreSQL the arrays are bound server-side in binary (core/db/bulk.py):
    ~25 instead of ~60 us of client CPU an event (one per captured message)."""
    batch = list(events)
    if not _listeners:
        bulk_insert(AuditEvent, batch)
        return
    if not batch:
        return
    with transaction.atomic(savepoint=False):
        bulk_insert(AuditEvent, batch)
        for fn in list(_listeners):
            fn(batch)


def event_digest(event: AuditEvent, prev_hash: str) -> str:
    payload = {
        "id": event.pk,
        "seq": event.seal_seq,
        "created": event.created.isoformat(),
        "actor_type": event.actor_type,
        "actor_user": event.actor_user_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "channel": event.channel,
        "address": event.address,
        "detail": event.detail,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + blob).encode()).hexdigest()


def seal_pending_events(batch_size: int = 5000) -> int:
    """Link unsealed events into the chain; returns how many were sealed. Safe to run in parallel."""
    sealed = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEAL_LOCK_ID])
                    if not cur.fetchone()[0]:
                        return sealed  # another sealer is at work
            pending = list(
                AuditEvent.objects.filter(seal_seq__isnull=True).order_by("id")[:batch_size]
            )
            if not pending:
                return sealed
            last = (
                AuditEvent.objects.filter(seal_seq__isnull=False)
                .order_by("-seal_seq")
                .values_list("seal_seq", "hash")
                .first()
            )
            seq, prev = last if last else (0, GENESIS)
            for event in pending:
                seq += 1
                event.seal_seq = seq
                event.prev_hash = prev
                event.hash = event_digest(event, prev)
                prev = event.hash
            _write_seals(pending)
            sealed += len(pending)
        if len(pending) < batch_size:
            return sealed


def _write_seals(events: list[AuditEvent]) -> None:
    """Store seal_seq/prev_hash/hash of sealed events: one prepared UPDATE per row, sent with
    executemany (pipelined by psycopg 3). bulk_update's CASE expressions cost ~1.5 ms of CPU
    per event to build, which starved concurrent writers on small machines (bench/audit.py)."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = f"UPDATE {table} SET seal_seq = %s, prev_hash = %s, hash = %s WHERE id = %s"  # noqa: S608
    with connection.cursor() as cur:
        cur.executemany(sql, [(e.seal_seq, e.prev_hash, e.hash, e.pk) for e in events])


@dataclass(frozen=True)
class ChainReport:
    checked: int
    unsealed: int
    first_broken_seq: int | None
    first_broken_id: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


def verify_chain(chunk: int = 5000) -> ChainReport:
    """Recompute every hash from the newest anchor; report the first broken link."""
    anchor = AuditAnchor.objects.order_by("-seal_seq").first()
    start_seq, prev = (anchor.seal_seq, anchor.hash) if anchor else (0, GENESIS)
    expected_seq = start_seq + 1
    checked = 0
    qs = AuditEvent.objects.filter(seal_seq__gt=start_seq).order_by("seal_seq")
    last_seq = start_seq
    while True:
        rows = list(qs.filter(seal_seq__gt=last_seq)[:chunk])
        if not rows:
            break
        for event in rows:
            if event.seal_seq != expected_seq:
                return ChainReport(
                    checked, 0, expected_seq, event.pk, "missing event (gap in sequence)"
                )
            if event.prev_hash != prev:
                return ChainReport(
                    checked, 0, event.seal_seq, event.pk, "previous hash does not match"
                )
            if event_digest(event, prev) != event.hash:
                return ChainReport(
                    checked, 0, event.seal_seq, event.pk, "event content was altered"
                )
            prev = event.hash
            expected_seq += 1
            checked += 1
        last_seq = rows[-1].seal_seq
    unsealed = AuditEvent.objects.filter(seal_seq__isnull=True).count()
    return ChainReport(checked, unsealed, None, None)


def last_sealed_seq() -> int:
    return AuditEvent.objects.aggregate(m=Max("seal_seq"))["m"] or 0


def prune_audit_log(cutoff: Any, *, actor: Any = "retention") -> int:
    """The audit log's own retention: drop the sealed events older than `cutoff` behind an
    `AuditAnchor`, so `verify_chain` still checks everything kept. Only a prefix of the chain
    goes (every event up to the last sequence whose events are all older than `cutoff`);
    unsealed events never. Returns the number of events dropped (an `audit.pruned` event
    records it)."""
    seal_pending_events()
    with transaction.atomic():
        sealed = AuditEvent.objects.filter(seal_seq__isnull=False)
        first_kept = sealed.filter(created__gte=cutoff).aggregate(m=Min("seal_seq"))["m"]
        through = (first_kept - 1) if first_kept is not None else last_sealed_seq()
        anchor = (
            AuditAnchor.objects.order_by("-seal_seq").values_list("seal_seq", flat=True).first()
        )
        if through <= (anchor or 0):
            return 0
        event_hash = sealed.filter(seal_seq=through).values_list("hash", flat=True).first()
        if event_hash is None:
            return 0
        AuditAnchor.objects.create(
            seal_seq=through, hash=event_hash, note=f"retention: events before {cutoff:%Y-%m-%d}"
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SET LOCAL mailwarden.audit_retention = 'on'")
        dropped, _ = AuditEvent.objects.filter(seal_seq__lte=through).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SET LOCAL mailwarden.audit_retention = 'off'")
        record_event(
            "audit.pruned", actor=actor, detail={"through_seq": through, "events": dropped}
        )
    return dropped
