"""Threading: References / In-Reply-To first, then normalised subject + participant overlap
(at least two shared addresses, one of them an external counterpart).

A message whose parent arrives later starts its own thread; when the parent comes, the
threads are merged into the parent's (docs/architecture.md, "Threading"). A reply joins its thread and so shares
the thread's links.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db import connection
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from capture.context import BatchContext, Work, all_addresses
from capture.linking import merge_unlinks
from capture.mime import normalize_subject
from capture.models import EmailMessage, Participant, ReviewItem, Thread, ThreadLink
from core.db.bulk import execute_binary, new_row

# Stored threads considered per subject (the newest by last activity).
CANDIDATES = 20

# Subjects too generic to thread on by themselves.
_GENERIC = {
    "",
    "hi",
    "hello",
    "hallo",
    "question",
    "meeting",
    "call",
    "follow up",
    "follow-up",
    "(no subject)",
    "no subject",
    "test",
}


def assign_thread(ctx: BatchContext, work: Work) -> Thread:
    """Find or create the message's thread; absorb threads of replies that arrived first."""
    parsed = work.parsed
    assert parsed is not None
    thread = thread_by_references(ctx, work)
    if thread is None:
        thread = thread_by_subject(ctx, work)
    if thread is None:
        thread = new_thread(
            ctx,
            subject=parsed.subject[:2000],
            subject_norm=normalize_subject(parsed.subject)[:255],
            owner_id=work.raw.user_id,
            first_at=parsed.date,
            last_at=parsed.date,
            message_count=0,
        )
    for child_tid in sorted(ctx.children_threads.get(parsed.message_id, set())):
        child_tid = ctx.resolve_thread_id(child_tid)
        if child_tid != thread.pk:
            merge_threads(ctx, into=thread, other_id=child_tid)
    return thread


# Thread ids taken from the sequence at a time (PostgreSQL). A batch of 100 generated messages
# starts ~20 threads; an unused id is a gap in the sequence, as a rolled-back insert leaves.
ID_BLOCK = 16


def new_thread(ctx: BatchContext, **fields) -> Thread:
    """A new thread of this batch.

    PostgreSQL: its id is drawn from the table's sequence (a block of ids per query) and the
    row is inserted with the batch's other rows at flush (`ctx.pending_threads`), instead of
    one INSERT per thread here; the foreign keys pointing at it are deferred to the commit
    (Django creates them DEFERRABLE INITIALLY DEFERRED). Elsewhere it is inserted now.
    """
    if connection.vendor != "postgresql":
        thread = Thread.objects.create(**fields)
        ctx.threads[thread.pk] = thread
        ctx.batch_threads.add(thread.pk)
        return thread
    if not ctx.thread_ids:
        assert Thread._meta.db_table == "capture_thread"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('capture_thread', 'id'))"
                " FROM generate_series(1, %s)",
                [ID_BLOCK],
            )
            ctx.thread_ids = [row[0] for row in cursor.fetchall()][::-1]
    now = timezone.now()
    thread = new_row(Thread, id=ctx.thread_ids.pop(), created=now, updated=now, **fields)
    ctx.threads[thread.pk] = thread
    ctx.pending_threads[thread.pk] = thread
    ctx.batch_threads.add(thread.pk)
    return thread


def thread_by_references(ctx: BatchContext, work: Work) -> Thread | None:
    parsed = work.parsed
    assert parsed is not None
    # The nearest ancestor first: In-Reply-To, then References from last (parent) to first (root).
    for mid in (parsed.in_reply_to, *reversed(parsed.references)):
        if mid and mid != parsed.message_id:
            parent = ctx.emails_by_mid.get(mid)
            if parent is not None:
                return ctx.thread(parent.thread_id)
    return None


def thread_by_subject(ctx: BatchContext, work: Work) -> Thread | None:
    parsed = work.parsed
    assert parsed is not None
    norm = normalize_subject(parsed.subject)[:255]
    if norm in _GENERIC or len(norm) < 4:
        return None
    window = timedelta(days=ctx.policy.settings.thread_window_days)
    mine = set(all_addresses(parsed))
    external = {a for a in mine if not ctx.is_internal(a)}
    if len(mine) < MIN_SHARED:
        return None
    candidates = {
        t.pk: t
        for t in (ctx.threads.get(s.pk, s) for s in stored_subject_candidates(ctx, norm))
        if t.pk not in ctx.thread_alias
        and t.last_at is not None
        and t.first_at is not None
        and t.last_at >= parsed.date - window
        and t.first_at <= parsed.date + window
    }
    if len(ctx.subject_candidates[norm]) >= CANDIDATES and len(candidates) < CANDIDATES:
        # The batch's lookup hit its cap for this subject: ask for this message's own window.
        candidates = {
            t.pk: t
            for t in Thread.objects.filter(
                subject_norm=norm,
                last_at__gte=parsed.date - window,
                first_at__lte=parsed.date + window,
            ).order_by("-last_at")[:CANDIDATES]
        }
    for t in ctx.threads.values():
        if t.subject_norm == norm and t.last_at and abs(t.last_at - parsed.date) <= window:
            candidates.setdefault(t.pk, t)
    if not candidates:
        return None
    shared = stored_overlap(ctx, candidates, mine)
    for tid in candidates:
        here = ctx.thread_addresses.get(tid, set()) & mine
        if here:
            shared.setdefault(tid, set()).update(here)
    best = [tid for tid, common in shared.items() if subject_match(common, external)]
    if not best:
        return None
    best.sort(
        key=lambda tid: (len(shared[tid] & external), len(shared[tid]), candidates[tid].last_at),
        reverse=True,
    )
    chosen = best[0]
    ctx.threads.setdefault(chosen, candidates[chosen])
    return ctx.threads[chosen]


# Distinct addresses a message must share with a thread to join it by subject.
MIN_SHARED = 2


def subject_match(shared: set[str], external: set[str]) -> bool:
    """The subject fallback's participant rule (docs/architecture.md, "Threading").

    A message joins a stored thread with its normalised subject only when they share at least
    two distinct addresses, one of them an external counterpart of the message (when the
    message has any). One shared address is not enough: the replies of different recipients
    of one bulk mail share only its sender, and different customers writing to one of our
    users with the same subject share only that user.
    """
    if len(shared) < MIN_SHARED:
        return False
    return not external or bool(shared & external)


def stored_subject_candidates(ctx: BatchContext, norm: str) -> list[Thread]:
    """Stored threads with this normalised subject near the batch's dates, newest first.

    Loaded once per batch for every subject the batch may thread on (one query instead of one
    per new thread), at most CANDIDATES per subject.
    """
    if ctx.subject_candidates is None:
        ctx.subject_candidates = defaultdict(list)
        window = timedelta(days=ctx.policy.settings.thread_window_days)
        dated = [w.parsed for w in ctx.works if w.parsed is not None]
        norms = {normalize_subject(p.subject)[:255] for p in dated} - _GENERIC
        if norms and dated:
            since = min(p.date for p in dated) - window
            until = max(p.date for p in dated) + window
            if connection.vendor == "postgresql":
                rows = _subject_candidates_pg(sorted(norms), since, until)
            else:
                rank = Window(
                    RowNumber(), partition_by=F("subject_norm"), order_by=F("last_at").desc()
                )
                rows = (
                    Thread.objects.filter(
                        subject_norm__in=norms, last_at__gte=since, first_at__lte=until
                    )
                    .annotate(rank=rank)
                    .filter(rank__lte=CANDIDATES)
                    .order_by("subject_norm", "-last_at")
                )
            for t in rows:
                ctx.subject_candidates[t.subject_norm].append(t)
    return ctx.subject_candidates[norm]


def _subject_candidates_pg(norms: list[str], since, until) -> list[Thread]:
    """stored_subject_candidates' query with the subjects bound as one binary array (an IN
    list of quoted literals and the ORM's window-query compilation cost more client CPU than
    the query itself)."""
    fields = [f.attname for f in Thread._meta.concrete_fields]
    cols = ", ".join(fields)
    rows = execute_binary(
        f"SELECT {cols} FROM (SELECT {cols}, row_number() OVER"  # noqa: S608
        " (PARTITION BY subject_norm ORDER BY last_at DESC) AS rank"
        f" FROM {Thread._meta.db_table} WHERE subject_norm = ANY(%b::text[])"
        " AND last_at >= %b AND first_at <= %b) AS t"
        " WHERE rank <= %b ORDER BY subject_norm, last_at DESC",
        [norms, since, until, CANDIDATES],
        fetch=True,
    )
    return [Thread.from_db("default", fields, row) for row in rows]


def stored_overlap(ctx: BatchContext, candidates, mine: set[str]) -> dict[int, set[str]]:
    """Thread id -> the addresses of `mine` that stored participants of that thread have.

    The batch's subject candidates are counted in one query for all the batch's addresses
    (stored_participant_counts); other threads, and a thread a stored thread was merged into
    in this batch (its rows moved), are asked about here.
    """
    preloaded = stored_participant_counts(ctx)
    stale = ctx.overlap_stale
    shared: dict[int, set[str]] = {}
    ask = []
    for tid in candidates:
        if tid in ctx.batch_threads and tid not in stale:
            continue  # started in this batch: none of its participants is stored yet
        counts = preloaded.get(tid)
        if counts is None or tid in stale:
            ask.append(tid)
            continue
        common = {a for a in mine if counts.get(a, 0)}
        if common:
            shared[tid] = common
    if ask:
        for tid, address in (
            Participant.objects.filter(email__thread_id__in=ask, address__in=mine)
            .values_list("email__thread_id", "address")
            .distinct()
        ):
            shared.setdefault(tid, set()).add(address)
    return shared


def stored_participant_counts(ctx: BatchContext) -> dict[int, dict[str, int]]:
    """For every stored subject candidate of the batch: address -> participant rows, for the
    addresses the batch's mail has (one query per batch instead of one per message)."""
    counts = ctx.stored_participants
    if counts is None:
        assert ctx.subject_candidates is not None
        tids = {t.pk for ts in ctx.subject_candidates.values() for t in ts}
        counts = {tid: {} for tid in tids}
        addresses = {a for w in ctx.works if w.parsed is not None for a in all_addresses(w.parsed)}
        if tids and addresses:
            if connection.vendor == "postgresql":
                # arrays bound in binary, not IN lists of hundreds of literals (context.py)
                assert Participant._meta.db_table == "capture_participant"
                assert EmailMessage._meta.db_table == "capture_emailmessage"
                rows = execute_binary(
                    STORED_OVERLAP_PG, [sorted(tids), sorted(addresses)], fetch=True
                )
            else:
                rows = (
                    Participant.objects.filter(email__thread_id__in=tids, address__in=addresses)
                    .values_list("email__thread_id", "address")
                    .annotate(n=Count("id"))
                )
            for tid, address, n in rows:
                counts[tid][address] = n
        ctx.stored_participants = counts
    return counts


# Driven from the thread ids through the indexes (OFFSET 0 keeps each lateral lookup a
# parameterised index scan): as a plain join the planner hash-joined two sequential scans
# whenever the tables' statistics were missing or stale (a server without autovacuum, a table
# that just grew), a cost that grew with all stored mail instead of with the candidates
# (bench/ingest.py; tests/capture/test_lookup_plans.py).
STORED_OVERLAP_PG = (
    "SELECT t.id, p.address, count(*) FROM unnest(%b::bigint[]) AS t(id)"
    " CROSS JOIN LATERAL (SELECT e.id FROM capture_emailmessage e WHERE e.thread_id = t.id"
    " OFFSET 0) AS e"
    " CROSS JOIN LATERAL (SELECT p.address FROM capture_participant p WHERE p.email_id = e.id"
    " OFFSET 0) AS p"
    " WHERE p.address = ANY(%b::text[]) GROUP BY t.id, p.address"
)


def merge_threads(ctx: BatchContext, *, into: Thread, other_id: int) -> None:
    """Move every message, link and review of thread `other_id` into `into`, then drop it."""
    other = ctx.thread(other_id)
    # A thread of this batch not yet inserted has no rows pointing at it in the database.
    stored = ctx.pending_threads.pop(other.pk, None) is None
    if stored:
        EmailMessage.objects.filter(thread_id=other.pk).update(thread=into)
        # its participants now count for `into` (see stored_overlap)
        ctx.overlap_stale.add(into.pk)
    for email in ctx.emails_by_mid.values():
        if email.thread_id == other.pk:
            email.thread_id = into.pk
    for w in ctx.works:
        if w.email is not None and w.email.thread_id == other.pk:
            w.email.thread_id = into.pk
    if stored:
        existing = set(
            ThreadLink.objects.filter(thread=into).values_list(
                "contact_id", "organization_id", "item_id"
            )
        )
        for link in ThreadLink.objects.filter(thread=other):
            if (link.contact_id, link.organization_id, link.item_id) in existing:
                link.delete()
            else:
                link.thread = into
                link.save(update_fields=["thread"])
    for link in ctx.new_links:
        if link.thread_id == other.pk:
            link.thread_id = into.pk
    if stored:
        ReviewItem.objects.filter(thread=other).update(thread=into)
        merge_unlinks(other.pk, into.pk)  # a person's unlink stays sticky after a merge
    into.message_count += other.message_count
    for attr, pick in (("first_at", min), ("last_at", max)):
        values = [v for v in (getattr(into, attr), getattr(other, attr)) if v is not None]
        setattr(into, attr, pick(values) if values else None)
    # The owner is the first capturer: the older thread's owner wins, and it is saved (the
    # stats refresh at the end of the batch writes counts and times only).
    if other.owner_id and (into.owner_id is None or other.created < into.created):
        into.owner_id = other.owner_id
        if into.pk not in ctx.pending_threads:
            Thread.objects.filter(pk=into.pk).update(owner_id=into.owner_id)
    ctx.thread_addresses[into.pk] |= ctx.thread_addresses.pop(other.pk, set())
    ctx.thread_alias[other.pk] = into.pk
    ctx.threads.pop(other.pk, None)
    ctx.dirty_threads.discard(other.pk)
    ctx.dirty_threads.add(into.pk)
    if stored:
        other.delete()
    ctx.threads_merged += 1


def touch_thread(ctx: BatchContext, thread: Thread, work: Work) -> None:
    parsed = work.parsed
    assert parsed is not None
    thread.message_count += 1
    thread.first_at = min(thread.first_at or parsed.date, parsed.date)
    thread.last_at = max(thread.last_at or parsed.date, parsed.date)
    if thread.owner_id is None and work.raw.user_id:
        thread.owner_id = work.raw.user_id
        if thread.pk not in ctx.pending_threads:
            Thread.objects.filter(pk=thread.pk, owner__isnull=True).update(owner_id=thread.owner_id)
    ctx.thread_addresses[thread.pk].update(all_addresses(parsed))
    ctx.dirty_threads.add(thread.pk)
