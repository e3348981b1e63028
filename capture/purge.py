"""The purge: due messages are deleted (into the bin), redacted, anonymised or sent to review.

Each batch is one transaction: the due rows are found by the partial index on
(expires_at, id) and locked with FOR UPDATE SKIP LOCKED, so several workers share the work and
never act on a row twice; holds are re-checked on the locked rows; files are never removed
inside the transaction but named in the `FileDeletion` outbox, which is drained after the
commit (and at the start of every run) and removes a file only when no row references its
path any more. A crash anywhere thus leaves no orphan file and loses no referenced one.

Deleted messages go to a restorable bin (`BinnedMessage`) for MAILWARDEN_RETENTION_BIN_DAYS;
the vacuum removes them for good. docs/retention.md describes it all.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, connections, models, router, transaction
from django.db.models import Count, Q
from django.db.models.deletion import Collector, get_candidate_relations_to_delete
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone

from capture import storage
from capture.holds import MessageOnHold, held
from capture.models import (
    Attachment,
    BinnedBlob,
    BinnedMessage,
    Blob,
    Capture,
    DispositionReview,
    EmailMessage,
    FileDeletion,
    Meeting,
    MeetingMessage,
    MessageRef,
    Participant,
    PurgeRun,
    RawMessage,
    RetentionPolicy,
    ReviewItem,
    Thread,
    ThreadLink,
)
from core.db.bulk import execute_arrays
from governance.audit import build_event, prune_audit_log, record_event, record_events
from governance.pseudonyms import pseudonym_address as pseudonym
from governance.pseudonyms import pseudonym_of_name

log = logging.getLogger(__name__)
T = TypeVar("T")

Action = RetentionPolicy.Action
DISPOSAL_ACTIONS = (Action.DELETE, Action.REDACT, Action.ANONYMISE, Action.REVIEW)

# Set while a door that already checked holds deletes: the pre_delete guard then stays quiet.
_holds_checked: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "holds_checked", default=False
)


@receiver(pre_delete, sender=EmailMessage, dispatch_uid="capture.purge.refuse_held")
def refuse_held_delete(sender, instance: EmailMessage, **kwargs) -> None:
    """No door deletes a held message: the admin's delete, a never-log removal, any code."""
    if _holds_checked.get():
        return
    found = held([instance.pk])
    if found:
        raise MessageOnHold(found)


def _worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def bin_days() -> int:
    return max(0, int(settings.MAILWARDEN_RETENTION_BIN_DAYS))


# --- the run ---------------------------------------------------------------------------------


def due_queryset(now=None):
    now = now or timezone.now()
    return EmailMessage.objects.filter(expires_at__lte=now, expiry_action__in=DISPOSAL_ACTIONS)


def preview_run(now=None) -> dict[str, Any]:
    """What the next run would do: counts per policy and action, and how many are held."""
    from capture.holds import messages_on_hold

    qs = due_queryset(now)
    on_hold = qs.filter(messages_on_hold())
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for policy_id, action, n in (
        qs.exclude(pk__in=on_hold.values("pk"))
        .values("expiry_policy_id", "expiry_action")
        .annotate(n=Count("pk"))
        .values_list("expiry_policy_id", "expiry_action", "n")
    ):
        counts[str(policy_id or "none")][action] = n
    vacuum = BinnedMessage.objects.filter(vacuum_after__lte=now or timezone.now()).count()
    return {"counts": dict(counts), "held": on_hold.count(), "vacuum": vacuum}


def purge_expired(
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    worker: str = "",
) -> PurgeRun:
    """Run the purge once over every due message (or `limit` of them); returns its PurgeRun."""
    started = time.monotonic()
    run = PurgeRun.objects.create(dry_run=dry_run, worker=worker or _worker_label())
    if dry_run:
        plan = preview_run()
        run.counts, run.held, run.vacuumed = plan["counts"], plan["held"], plan["vacuum"]
        run.finished = timezone.now()
        run.duration_ms = int((time.monotonic() - started) * 1000)
        run.save()
        return run
    batch_size = batch_size or settings.MAILWARDEN_RETENTION_BATCH
    pause = settings.MAILWARDEN_RETENTION_PAUSE_MS / 1000
    yield_share = settings.MAILWARDEN_PURGE_BUSY_YIELD
    activity = CaptureActivity() if yield_share > 0 else None
    counts: dict[str, Counter] = defaultdict(Counter)
    errors: list[dict[str, Any]] = []
    run.files_deleted += drain_outbox()
    run.vacuumed += vacuum_bin()
    if settings.MAILWARDEN_AUDIT_RETENTION_DAYS > 0:
        cutoff = timezone.now() - timedelta(days=settings.MAILWARDEN_AUDIT_RETENTION_DAYS)
        counts["audit"]["pruned"] += prune_audit_log(cutoff)
    now = timezone.now()
    cursor: tuple[Any, int] | None = None
    done = batches = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        batch_started = time.monotonic()
        try:
            with transaction.atomic():
                rows = _lock_due(now, cursor, size)
                if not rows:
                    break
                cursor = (rows[-1][1], rows[-1][0])
                acted, on_hold = _act(rows, run)
                run.held += on_hold
                for (policy_id, action), n in acted.items():
                    counts[str(policy_id or "none")][action] += n
        except IntegrityError as e:  # a concurrent capture re-used a blob: retried next run
            errors.append({"error": type(e).__name__, "batch": batches})
            log.warning("purge batch failed, retried next run: %s", type(e).__name__)
            if cursor is None:
                break
            continue
        batches += 1
        done += len(rows)
        if on_batch is not None:
            on_batch(batches, len(rows))
        if pause:
            time.sleep(pause)  # yield to capture (and the crash tests' window)
        if activity is not None and activity.arrived():
            # mail arrived during the batch: rest as long as the batch took (times the share)
            time.sleep((time.monotonic() - batch_started) * yield_share)
        if progress is not None:
            progress(len(rows))
    run.batches_ms = int((time.monotonic() - started) * 1000)
    # The files after the rows: removing them beside the batches (a thread of their own, as
    # an earlier round did) took as long in all on two cores and slowed the batches by a
    # third (docs/benchmarks.md); paced while mail arrives.
    run.files_deleted += drain_outbox(pace=Pacer())
    run.counts = {k: dict(v) for k, v in counts.items()}
    run.errors = errors
    run.finished = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save()
    return run


def run_niced(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` in a thread of its own at MAILWARDEN_PURGE_NICE lower CPU priority, so the
    purge leaves the processor to capture (Linux keeps a nice value per thread, so the
    Celery worker or command around it keeps its own; the threads it starts inherit it).
    Inline where the caller holds a transaction a new thread could not see into, or where
    the platform has no per-thread priority."""
    nice = settings.MAILWARDEN_PURGE_NICE
    if nice <= 0 or transaction.get_connection().in_atomic_block or not hasattr(os, "setpriority"):
        return fn(*args, **kwargs)
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            me = threading.get_native_id()
            try:
                os.setpriority(os.PRIO_PROCESS, me, os.getpriority(os.PRIO_PROCESS, me) + nice)
            except OSError:  # not Linux's per-thread priority: run at the usual one
                pass
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised in the caller's thread
            out["error"] = e
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name="mailwarden-purge")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _lock_due(now, cursor, size: int) -> list[tuple[int, Any, str, int | None]]:
    qs = due_queryset(now)
    if cursor is not None:
        at, pk = cursor
        qs = qs.filter(Q(expires_at__gt=at) | Q(expires_at=at, pk__gt=pk))
    return list(
        qs.order_by("expires_at", "pk")
        .select_for_update(skip_locked=True, of=("self",))
        .values_list("pk", "expires_at", "expiry_action", "expiry_policy_id")[:size]
    )


def _act(rows, run: PurgeRun) -> tuple[Counter, int]:
    """Act on locked due rows (inside the batch's transaction): holds re-checked first."""
    on_hold = held([r[0] for r in rows])
    acted: Counter = Counter()
    by_action: dict[str, list[int]] = defaultdict(list)
    for pk, _, action, policy_id in rows:
        if pk in on_hold:
            continue
        by_action[action].append(pk)
        acted[(policy_id, action)] += 1
    policy_of = {r[0]: r[3] for r in rows}
    events = []
    for action, ids in by_action.items():
        if action == Action.DELETE:
            delete_messages(ids, reason="policy", policy_of=policy_of)
        elif action == Action.REDACT:
            redact_messages(ids)
        elif action == Action.ANONYMISE:
            anonymise_messages(ids)
        elif action == Action.REVIEW:
            open_reviews(ids, policy_of)
        events.append(
            build_event(
                f"retention.{action}",
                actor="purge",
                obj=run,
                detail={"messages": sorted(ids), "count": len(ids)},
            )
        )
    if on_hold:
        events.append(
            build_event("retention.held", actor="purge", obj=run, detail={"count": len(on_hold)})
        )
    record_events(events)
    return acted, len(on_hold)


def dispose_now(ids: list[int], *, reason: str, actor: Any) -> int:
    """Delete these messages now (into the bin) after checking holds: a disposition approval."""
    with transaction.atomic():
        locked = list(
            EmailMessage.objects.filter(pk__in=ids)
            .select_for_update()
            .values_list("pk", "expiry_policy_id")
        )
        found = held([pk for pk, _ in locked])
        if found:
            raise MessageOnHold(found)
        delete_messages([pk for pk, _ in locked], reason=reason, policy_of=dict(locked))
        record_event(
            "retention.delete",
            actor=actor,
            detail={"messages": sorted(pk for pk, _ in locked), "reason": reason},
        )
    return len(locked)


# --- delete, into the bin -------------------------------------------------------------------


def _serialize(qs) -> list[dict[str, Any]]:
    return json.loads(serializers.serialize("json", qs, cls=DjangoJSONEncoder))


def _ids(sql: str, *params: Any) -> list[Any]:
    """The first column of a statement's rows (parameters bound as arrays: ``%b``)."""
    return [r[0] for r in execute_arrays(sql, list(params), fetch=True)]


def _keep_late_parent_refs(going: dict[str, int], replies) -> None:
    """Replies that referenced a going message get their MessageRef rows back (a reference to
    a stored message has none): a re-capture of it then rejoins them (docs/architecture.md)."""
    rows = []
    for pk, in_reply_to, refs in replies:
        if isinstance(refs, str):  # SQLite returns the JSON column as its text
            refs = json.loads(refs)
        for ref in {in_reply_to, *(refs or [])}:
            if ref and ref in going:
                rows.append(MessageRef(email_id=pk, ref=ref))
    MessageRef.objects.bulk_create(rows, ignore_conflicts=True)


def delete_messages(ids: list[int], *, reason: str, policy_of: dict[int, int | None]) -> None:
    """Delete messages inside the caller's transaction: into the bin (files kept, rows
    serialised) or, with a bin of 0 days, for good (files through the outbox).

    Set-based: a handful of statements per batch, every id list bound as one array."""
    if not ids:
        return
    ids = sorted(ids)
    em, raw, cap, att = (m._meta.db_table for m in (EmailMessage, RawMessage, Capture, Attachment))
    going_rows = execute_arrays(
        f"SELECT id, thread_id, message_id FROM {em} WHERE id = ANY(%b::bigint[])",  # noqa: S608
        [ids],
        fetch=True,
    )
    thread_of = {pk: tid for pk, tid, _ in going_rows}
    threads = sorted(set(thread_of.values()))
    replies = execute_arrays(
        f'SELECT id, in_reply_to, "references", thread_id FROM {em}'  # noqa: S608
        " WHERE thread_id = ANY(%b::bigint[]) AND NOT id = ANY(%b::bigint[])",
        [threads, ids],
        fetch=True,
    )
    _keep_late_parent_refs({mid: tid for _, tid, mid in going_rows}, [r[:3] for r in replies])
    raw_ids = set(
        _ids(
            f"SELECT id FROM {raw} WHERE email_id = ANY(%b::bigint[])"  # noqa: S608
            f" UNION SELECT first_raw_id FROM {em} WHERE id = ANY(%b::bigint[])"
            " AND first_raw_id IS NOT NULL"
            f" UNION SELECT raw_id FROM {cap} WHERE email_id = ANY(%b::bigint[])",
            ids,
            ids,
            ids,
        )
    )
    blob_ids = set(
        _ids(
            f"SELECT DISTINCT blob_id FROM {att}"  # noqa: S608
            " WHERE email_id = ANY(%b::bigint[]) AND blob_id IS NOT NULL",
            ids,
        )
    )
    emptied = set(threads) - {r[3] for r in replies}
    days = bin_days()
    if days:
        _to_bin(ids, thread_of, emptied, raw_ids, policy_of, reason, days)
    # With no bin the raw rows go too (below, same transaction): no point unlinking them
    # first (foreign keys are checked at commit).
    _delete_rows(ids, going={} if days else {RawMessage: sorted(raw_ids)})
    _settle_threads(set(threads), emptied)
    if not days:
        _delete_raws(raw_ids)
        _delete_unused_blobs(blob_ids)


def _delete_rows(
    ids: list[int],
    model: type[models.Model] = EmailMessage,
    *,
    going: dict[type[models.Model], list[int]] | None = None,
) -> None:
    """Delete rows of `model` by id: every relation to it walked from the model's metadata
    (so tables other apps add are handled as their on_delete says), then one DELETE by id.
    Each step is one statement with the ids bound as an array; dependent rows that have
    dependents (or delete signals) of their own are walked the same way (or deleted by
    Django). No instance of `model` is loaded (the Collector loads every column of every
    message row because of the pre_delete guard, which the purge does not need: it checked
    holds on the locked rows). Sends no per-row delete signals of `model`; the purge's audit
    events name the messages. `going`: rows of related models the caller deletes later in
    the same transaction, which a SET_NULL then leaves alone (foreign keys are deferred)."""
    if not ids:
        return
    ids = sorted(ids)
    token = _holds_checked.set(True)
    try:
        pk = model._meta.pk
        collector = Collector(using=router.db_for_write(model), origin=None)
        for rel in get_candidate_relations_to_delete(model._meta):
            if rel.many_to_many:
                continue
            handler = rel.on_delete
            if handler is models.DO_NOTHING:
                continue
            related, column = rel.related_model, rel.field.column
            table = related._meta.db_table
            where = f"{column} = ANY(%b::{_array_type(pk)})"
            if rel.field.target_field != pk:  # a relation to another column: Django's rules
                model._base_manager.filter(pk__in=ids).delete()
                return
            if handler is models.CASCADE:
                if collector.can_fast_delete(related, from_field=rel.field):
                    execute_arrays(f"DELETE FROM {table} WHERE {where}", [ids])  # noqa: S608
                elif collector._has_signal_listeners(related):
                    related._base_manager.filter(**{f"{rel.field.name}__in": ids}).delete()
                else:
                    rpk = related._meta.pk.column
                    _delete_rows(
                        _ids(f"SELECT {rpk} FROM {table} WHERE {where}", ids),  # noqa: S608
                        related,
                    )
            elif handler is models.SET_NULL:
                later = (going or {}).get(related)
                if later:
                    execute_arrays(
                        f"UPDATE {table} SET {column} = NULL WHERE {where}"  # noqa: S608
                        f" AND NOT {related._meta.pk.column} = ANY(%b::bigint[])",
                        [ids, later],
                    )
                else:
                    execute_arrays(
                        f"UPDATE {table} SET {column} = NULL WHERE {where}",  # noqa: S608
                        [ids],
                    )
            elif handler in (models.PROTECT, models.RESTRICT) and not _ids(
                f"SELECT 1 FROM {table} WHERE {where} LIMIT 1",  # noqa: S608
                ids,
            ):
                continue  # nothing refers to the rows: nothing to protect
            else:  # PROTECT / RESTRICT with referring rows, SET_DEFAULT, SET(...): Django
                model._base_manager.filter(pk__in=ids).delete()
                return
        execute_arrays(
            f"DELETE FROM {model._meta.db_table}"  # noqa: S608
            f" WHERE {pk.column} = ANY(%b::{_array_type(pk)})",
            [ids],
        )
    finally:
        _holds_checked.reset(token)


def _array_type(field: models.Field) -> str:
    return (
        "bigint[]"
        if isinstance(field, models.AutoField | models.IntegerField)
        else (f"{field.db_type(connection)}[]")
    )


def _delete_where(model: type[models.Model], column: str, values: Iterable[int]) -> None:
    """Delete the rows of `model` whose `column` is one of `values` (Django's delete when
    the model has delete signals, else the set-based walk of `_delete_rows`)."""
    values = sorted(values)
    if not values:
        return
    if Collector(using=router.db_for_write(model), origin=None)._has_signal_listeners(model):
        model._base_manager.filter(**{f"{column}__in": values}).delete()
        return
    _delete_rows(
        _ids(
            f"SELECT {model._meta.pk.column} FROM {model._meta.db_table}"  # noqa: S608
            f" WHERE {column} = ANY(%b::bigint[])",
            values,
        ),
        model,
    )


def _to_bin(ids, thread_of, emptied, raw_ids, policy_of, reason, days) -> None:
    per_email: dict[int, dict[str, list]] = {pk: defaultdict(list) for pk in ids}
    per_email_raws: dict[int, set[int]] = defaultdict(set)
    for row in _serialize(EmailMessage.objects.filter(pk__in=ids)):
        per_email[row["pk"]]["message"].append(row)
        if row["fields"].get("first_raw"):
            per_email_raws[row["pk"]].add(row["fields"]["first_raw"])
    for model, key in (
        (Participant, "participants"),
        (Attachment, "attachments"),
        (MessageRef, "refs"),
        (Capture, "captures"),
        (MeetingMessage, "meetings"),
    ):
        for row in _serialize(model.objects.filter(email_id__in=ids)):
            per_email[row["fields"]["email"]][key].append(row)
            if model is Capture:
                per_email_raws[row["fields"]["email"]].add(row["fields"]["raw"])
    for pk, email_id in RawMessage.objects.filter(email_id__in=ids).values_list("pk", "email_id"):
        per_email_raws[email_id].add(pk)
    # The last message leaving a thread takes the thread and its links along.
    last_of_thread: dict[int, int] = {}
    for pk in sorted(ids):
        if thread_of[pk] in emptied:
            last_of_thread[thread_of[pk]] = pk
    for tid, pk in last_of_thread.items():
        per_email[pk]["thread"] = _serialize(Thread.objects.filter(pk=tid))
        per_email[pk]["links"] = _serialize(ThreadLink.objects.filter(thread_id=tid))
    vacuum_after = timezone.now() + timedelta(days=days)
    entries = [
        BinnedMessage(
            email_id=pk,
            thread_id=thread_of[pk],
            payload=dict(per_email[pk]),
            raw_ids=sorted(per_email_raws[pk]),
            policy_id=policy_of.get(pk),
            reason=reason[:40],
            vacuum_after=vacuum_after,
        )
        for pk in ids
    ]
    BinnedMessage.objects.bulk_create(entries)
    entry_of = {e.email_id: e for e in entries}
    BinnedBlob.objects.bulk_create(
        [
            BinnedBlob(binned=entry_of[email_id], blob_id=blob_id)
            for email_id, blob_id in Attachment.objects.filter(
                email_id__in=ids, blob__isnull=False
            ).values_list("email_id", "blob_id")
        ]
    )


def _settle_threads(thread_ids: set[int], emptied: set[int]) -> None:
    """Threads that keep messages get their count again (one statement); emptied ones go."""
    keep = sorted(thread_ids - emptied)
    if keep:
        execute_arrays(
            f"UPDATE {Thread._meta.db_table} AS t SET message_count = c.n"  # noqa: S608
            f" FROM (SELECT thread_id, count(*) AS n FROM {EmailMessage._meta.db_table}"
            " WHERE thread_id = ANY(%b::bigint[]) GROUP BY thread_id) AS c"
            " WHERE t.id = c.thread_id AND t.message_count IS DISTINCT FROM c.n",
            [keep],
        )
    if emptied:
        _delete_where(ReviewItem, "thread_id", emptied)
        _delete_rows(sorted(emptied), Thread)


def _delete_raws(raw_ids: Iterable[int]) -> None:
    """Delete raw rows; their files go through the outbox (drained after commit)."""
    raw_ids = sorted(raw_ids)
    if not raw_ids:
        return
    paths = _ids(
        f"SELECT storage_path FROM {RawMessage._meta.db_table}"  # noqa: S608
        " WHERE id = ANY(%b::bigint[])",
        raw_ids,
    )
    _delete_rows(raw_ids, RawMessage)
    _outbox(FileDeletion.Kind.RAW, paths)


def _delete_unused_blobs(blob_ids: Iterable[int]) -> None:
    """Delete the blobs nothing refers to any more; their files go through the outbox.

    One DELETE ... WHERE NOT EXISTS per referring table: a capture that re-uses a blob
    concurrently either is seen (the blob stays) or makes the foreign key fail
    (IntegrityError: the batch is retried next run), as with Django's delete."""
    blob_ids = sorted(blob_ids)
    if not blob_ids:
        return
    rels = [
        r
        for r in get_candidate_relations_to_delete(Blob._meta)
        if not r.many_to_many and r.on_delete is not models.DO_NOTHING
    ]
    if any(r.on_delete is not models.PROTECT for r in rels):  # another kind of relation
        unused = Blob.objects.filter(pk__in=blob_ids)
        for r in rels:
            if r.on_delete is models.PROTECT:
                unused = unused.exclude(pk__in=r.related_model._base_manager.values(r.field.name))
        paths = set(unused.values_list("storage_path", flat=True))
        unused.delete()
    else:
        table = Blob._meta.db_table
        guards = "".join(
            f" AND NOT EXISTS (SELECT 1 FROM {r.related_model._meta.db_table} AS r"  # noqa: S608
            f" WHERE r.{r.field.column} = b.id)"
            for r in rels
        )
        paths = set(
            _ids(
                f"DELETE FROM {table} AS b WHERE b.id = ANY(%b::bigint[]){guards}"  # noqa: S608
                " RETURNING storage_path",
                blob_ids,
            )
        )
    _outbox(FileDeletion.Kind.BLOB, paths)


def _outbox(kind: str, paths: Iterable[str]) -> None:
    paths = sorted({p for p in paths if p})
    if paths:
        execute_arrays(
            f"INSERT INTO {FileDeletion._meta.db_table} (kind, path, created)"  # noqa: S608
            " SELECT %b, p.value, %b FROM unnest(%b::text[]) AS p(value)",
            [kind, timezone.now(), paths],
        )


def _remove_files(remove: Callable[[str], None], paths: list[str]) -> None:
    """Remove files by a few threads at once, each thread a share of the list (removing a
    file mostly waits on the file system; one task per file would cost more than that)."""
    threads = max(1, settings.MAILWARDEN_STORE_WRITE_THREADS)
    shares = [paths[i::threads] for i in range(threads) if paths[i::threads]]
    storage.write_in_parallel(lambda share: [remove(p) for p in share], shares)


def _paths_in_use(model: type[models.Model], paths: set[str]) -> list[str]:
    if not paths:
        return []
    return _ids(
        f"SELECT storage_path FROM {model._meta.db_table}"  # noqa: S608
        " WHERE storage_path = ANY(%b::text[])",
        sorted(paths),
    )


class CaptureActivity:
    """Whether mail arrived since the last look: the newest raw row's id, one probe of the
    primary key's index (every channel stores a raw row before it answers)."""

    def __init__(self) -> None:
        self.top = self._top()

    @staticmethod
    def _top() -> int:
        return RawMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def arrived(self) -> bool:
        top = self._top()
        moved, self.top = top > self.top, top
        return moved


class Pacer:
    """Holds file removal to MAILWARDEN_PURGE_BUSY_FILES_PER_SECOND while mail is arriving
    (looked at every half second), at full speed otherwise: unlinks share the file system's
    journal with the fsync every capture makes before it answers (docs/retention.md)."""

    def __init__(self, per_second: int | None = None) -> None:
        rate = settings.MAILWARDEN_PURGE_BUSY_FILES_PER_SECOND if per_second is None else per_second
        self.interval = 1 / rate if rate > 0 else 0.0
        self.activity = CaptureActivity() if self.interval else None
        self.busy = False
        self.looked = time.monotonic()
        self.paced = 0

    def __call__(self, files: int) -> None:
        if self.activity is None:
            return
        now = time.monotonic()
        if now - self.looked >= 0.5:
            self.busy, self.looked = self.activity.arrived(), now
        if self.busy:
            self.paced += files
            time.sleep(files * self.interval)


PACE_SLICE = 50  # files removed between two looks at the pace


def drain_outbox(limit: int = 2000, pace: Callable[[int], None] | None = None) -> int:
    """Remove the outbox's files no row references any more (idempotent, safe in parallel).
    `pace` is called before each slice of files (it may sleep). Returns the files removed."""
    removed = 0
    while True:
        with transaction.atomic():
            rows = list(
                FileDeletion.objects.select_for_update(skip_locked=True).order_by("pk")[:limit]
            )
            if not rows:
                return removed
            raw = {r.path for r in rows if r.kind == FileDeletion.Kind.RAW}
            blob = {r.path for r in rows if r.kind == FileDeletion.Kind.BLOB}
            raw -= set(_paths_in_use(RawMessage, raw))
            blob -= set(_paths_in_use(Blob, blob))
            storage.forget_keys(storage.RAW, raw)
            storage.forget_keys(storage.BLOB, blob)
            work = [(storage.delete_raw_file, p) for p in sorted(raw)] + [
                (storage.delete_blob_file, p) for p in sorted(blob)
            ]
            step = PACE_SLICE if pace is not None else max(1, len(work))
            for i in range(0, len(work), step):
                part = work[i : i + step]
                if pace is not None:
                    pace(len(part))
                # Removing a file mostly waits on the file system: a few threads overlap it.
                _remove_files(lambda item: item[0](item[1]), part)
            removed += len(work)
            execute_arrays(
                f"DELETE FROM {FileDeletion._meta.db_table} WHERE id = ANY(%b::bigint[])",  # noqa: S608
                [[r.pk for r in rows]],
            )
        if len(rows) < limit:
            return removed


def vacuum_bin(now=None, batch: int = 500) -> int:
    """Remove bin entries past their days for good: their raw rows, unused blobs, files."""
    now = now or timezone.now()
    gone = 0
    while True:
        with transaction.atomic():
            entries = list(
                BinnedMessage.objects.filter(vacuum_after__lte=now)
                .select_for_update(skip_locked=True)
                .order_by("pk")[:batch]
            )
            if not entries:
                break
            raw_ids = {r for e in entries for r in e.raw_ids}
            blob_ids = set(
                BinnedBlob.objects.filter(binned__in=entries).values_list("blob_id", flat=True)
            )
            BinnedMessage.objects.filter(pk__in=[e.pk for e in entries]).delete()
            # a raw row re-used by a later capture of the same message stays
            _delete_raws(
                RawMessage.objects.filter(pk__in=raw_ids, email__isnull=True).values_list(
                    "pk", flat=True
                )
            )
            _delete_unused_blobs(blob_ids)
            record_event("retention.vacuumed", actor="purge", detail={"count": len(entries)})
            gone += len(entries)
        drain_outbox()
        if len(entries) < batch:
            break
    return gone


class RestoreRejected(Exception):
    pass


def restore(entry: BinnedMessage, *, actor: Any, channel: str, address: str = "") -> int:
    """Put a binned message back (its thread and links too when they went with it); audited.
    The restored message is kept out of automatic disposal (`disposition` "restored") until
    an admin relabels it. Returns the message's id."""
    with transaction.atomic():
        entry = BinnedMessage.objects.select_for_update().get(pk=entry.pk)
        payload = entry.payload
        message = payload["message"][0]
        if EmailMessage.objects.filter(message_id=message["fields"]["message_id"]).exists():
            raise RestoreRejected("The message was captured again since; nothing to restore.")
        missing = set(entry.raw_ids) - set(
            RawMessage.objects.filter(pk__in=entry.raw_ids).values_list("pk", flat=True)
        )
        if missing:
            raise RestoreRejected("Its raw files are gone (vacuumed).")
        if not Thread.objects.filter(pk=entry.thread_id).exists():
            if not payload.get("thread"):
                raise RestoreRejected("Its thread is gone.")
            _load(payload["thread"])
            _load(payload.get("links", []))
        message["fields"].update(
            expires_at=None, expiry_action="", expiry_rule="", disposition="restored"
        )
        _load(payload["message"])
        for key in ("participants", "attachments", "refs", "captures", "meetings"):
            _load(payload.get(key, []))
        RawMessage.objects.filter(pk__in=entry.raw_ids, email__isnull=True).update(
            email_id=entry.email_id
        )
        # references to a stored message have no MessageRef row (docs/architecture.md)
        MessageRef.objects.filter(
            ref=message["fields"]["message_id"], email__thread_id=entry.thread_id
        ).delete()
        n = EmailMessage.objects.filter(thread_id=entry.thread_id).count()
        Thread.objects.filter(pk=entry.thread_id).update(message_count=n)
        entry.delete()
        record_event(
            "retention.restored",
            actor=actor,
            object_type="capture.emailmessage",
            object_id=entry.email_id,
            channel=channel,
            address=address,
            detail={"binned_at": entry.binned_at.isoformat(), "reason": entry.reason},
        )
    return entry.email_id


def _load(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    for obj in serializers.deserialize("json", json.dumps(rows), ignorenonexistent=True):
        obj.save()


# --- redact and anonymise ---------------------------------------------------------------


def _drop_files_of(ids: list[int], blob_filter: Callable[[Blob], bool] | None = None) -> None:
    """Raw files of these messages go (their rows stay, path emptied); attachment blobs go
    (all, or those `blob_filter` picks), the attachment rows keep their metadata."""
    raws = list(
        RawMessage.objects.filter(Q(email_id__in=ids) | Q(capture__email_id__in=ids))
        .exclude(storage_path="")
        .values_list("pk", "storage_path")
        .distinct()
    )
    RawMessage.objects.filter(pk__in=[pk for pk, _ in raws]).update(storage_path="", size=0)
    _outbox(FileDeletion.Kind.RAW, {p for _, p in raws})
    atts = Attachment.objects.filter(email_id__in=ids, blob__isnull=False).select_related("blob")
    drop = [a for a in atts if blob_filter is None or blob_filter(a.blob)]
    Attachment.objects.filter(pk__in=[a.pk for a in drop]).update(
        blob=None, dropped=Attachment.Dropped.POLICY
    )
    _delete_unused_blobs({a.blob_id for a in drop})


def _mark(ids: list[int], done: str) -> None:
    for pk, disposition in EmailMessage.objects.filter(pk__in=ids).values_list("pk", "disposition"):
        marks = set(filter(None, disposition.split(","))) | {done}
        EmailMessage.objects.filter(pk=pk).update(
            disposition=",".join(sorted(marks)), expires_at=None, expiry_action="", expiry_rule=""
        )


def _recompute_threads(ids: list[int]) -> None:
    from capture.retention import compute_expiry

    threads = list(EmailMessage.objects.filter(pk__in=ids).values_list("thread_id", flat=True))
    for _ in compute_expiry({"threads": threads}):
        pass


def redact_messages(ids: list[int]) -> None:
    """Drop bodies and attachments, keep metadata (inside the caller's transaction)."""
    if not ids:
        return
    EmailMessage.objects.filter(pk__in=ids).update(
        text_body="", html_body="", body_truncated=False, stored=EmailMessage.Stored.METADATA
    )
    _drop_files_of(ids)
    _mark(ids, "redacted")
    _recompute_threads(ids)


class _Rewriter:
    """Replaces known addresses and names (case-insensitive) in any text."""

    def __init__(self, addresses: set[str], names: set[str]) -> None:
        self.map = {a.lower(): pseudonym(a) for a in addresses if a}
        self.map.update({n.lower(): pseudonym_of_name(n) for n in names if len(n) >= 3})
        words = sorted(self.map, key=len, reverse=True)
        self.pattern = (
            re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None
        )

    def text(self, value: str) -> str:
        if not value or self.pattern is None:
            return value
        return self.pattern.sub(lambda m: self.map[m.group(0).lower()], value)

    def json(self, value: Any) -> Any:
        if self.pattern is None:
            return value
        return json.loads(self.text(json.dumps(value)))

    def found_in(self, data: bytes) -> bool:
        lowered = data.lower()
        return any(a.encode() in lowered for a in self.map if "@" in a)


def anonymise_messages(ids: list[int]) -> None:
    """Participants' addresses and names become stable pseudonyms everywhere these messages
    keep them: participants, sender, headers, bodies, subject, the thread's subject and link
    reasons, meetings, raw rows; the raw files go, and attachment files that contain an
    address (inside the caller's transaction)."""
    if not ids:
        return
    parts = list(Participant.objects.filter(email_id__in=ids))
    msgs = list(EmailMessage.objects.filter(pk__in=ids))
    addresses = {p.address for p in parts} | {m.from_address for m in msgs}
    names = {p.name for p in parts} | {m.from_name for m in msgs}
    rw = _Rewriter({a for a in addresses if a}, {n for n in names if n})
    for p in parts:
        p.address = pseudonym(p.address) if p.address else ""
        p.name = pseudonym_of_name(p.name) if p.name else ""
    Participant.objects.bulk_update(parts, ["address", "name"], batch_size=500)
    for m in msgs:
        m.from_address = rw.text(m.from_address)
        m.from_name = rw.text(m.from_name)
        m.subject = rw.text(m.subject)
        m.text_body = rw.text(m.text_body)
        m.html_body = rw.text(m.html_body)
        m.headers = rw.json(m.headers)
    EmailMessage.objects.bulk_update(
        msgs,
        ["from_address", "from_name", "subject", "text_body", "html_body", "headers"],
        batch_size=200,
    )
    threads = list(Thread.objects.filter(pk__in={m.thread_id for m in msgs}))
    for t in threads:
        t.subject = rw.text(t.subject)
        t.subject_norm = rw.text(t.subject_norm)[:255]
    Thread.objects.bulk_update(threads, ["subject", "subject_norm"])
    links = list(ThreadLink.objects.filter(thread__in=threads).exclude(matched_address=""))
    for link in links:
        link.matched_address = rw.text(link.matched_address)
    ThreadLink.objects.bulk_update(links, ["matched_address"])
    meetings = list(Meeting.objects.filter(messages__email_id__in=ids).distinct())
    for mt in meetings:
        mt.organizer = rw.text(mt.organizer)
        mt.attendees = rw.json(mt.attendees)
        mt.summary = rw.text(mt.summary)
    Meeting.objects.bulk_update(meetings, ["organizer", "attendees", "summary"])
    raws = list(
        RawMessage.objects.filter(Q(email_id__in=ids) | Q(capture__email_id__in=ids)).distinct()
    )
    for r in raws:
        r.envelope_from = rw.text(r.envelope_from)
        r.envelope_to = rw.json(r.envelope_to)
        r.source = rw.text(r.source)
    RawMessage.objects.bulk_update(raws, ["envelope_from", "envelope_to", "source"])
    reviews = list(ReviewItem.objects.filter(email_id__in=ids))
    for rv in reviews:
        rv.detail = rw.json(rv.detail)
    ReviewItem.objects.bulk_update(reviews, ["detail"])

    def holds_address(blob: Blob) -> bool:
        try:
            with storage.open_blob(blob.storage_path) as f:
                return rw.found_in(f.read())
        except OSError:
            return False

    _drop_files_of(ids, blob_filter=holds_address)
    _mark(ids, "anonymised")
    _recompute_threads(ids)


# --- review -------------------------------------------------------------------------------


def open_reviews(ids: list[int], policy_of: dict[int, int | None]) -> None:
    reviewers = dict(
        RetentionPolicy.objects.filter(pk__in={policy_of.get(i) for i in ids} - {None}).values_list(
            "pk", "reviewer_id"
        )
    )
    DispositionReview.objects.bulk_create(
        [
            DispositionReview(
                email_id=pk,
                email_ref=pk,
                policy_id=policy_of.get(pk),
                reviewer_id=reviewers.get(policy_of.get(pk)),
            )
            for pk in ids
        ]
    )
    EmailMessage.objects.filter(pk__in=ids).update(expires_at=None, disposition="in_review")
