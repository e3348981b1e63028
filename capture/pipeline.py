"""Processing stored raw messages: parse → dedupe → gate → thread → resolve participants →
link → store → audit (docs/architecture.md, "The capture pipeline").

`process_raw_messages` is the one dispatcher. A batch is processed in one transaction with
bulk lookups (capture/context.py); known bad input ends `rejected` with a reason code, an
unexpected error rolls the batch back and each message is retried alone, so one bad message
marks only itself `failed`. Processing is idempotent: a raw message that is no longer pending
(or failed) is reported as it stands and changes nothing.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, Max, Min, OuterRef, Subquery
from django.utils import timezone

from capture import storage
from capture.context import BatchContext, Work
from capture.errors import InputRejected
from capture.forwarding import extract_forwarded_original
from capture.gate import SUBMITTED_CHANNELS, gate_message, gate_thread
from capture.linking import (
    ambiguous_contact_reviews,
    apply_link_rules,
    link_chosen_records,
    link_items,
    sync_link_dates,
)
from capture.meetings import store_meetings
from capture.mime import ParseLimits, parse_email
from capture.models import (
    Attachment,
    Capture,
    Category,
    EmailMessage,
    MessageRef,
    Participant,
    RawMessage,
    ReviewItem,
    Thread,
    ThreadLink,
    UnmatchedReference,
)
from capture.participants import derive_direction, resolve_participants
from capture.store import body_fields, flush_blobs, store_attachments, store_meeting
from capture.threads import assign_thread, touch_thread
from core.db.bulk import bulk_insert, execute_binary, insert_skipping_conflicts, new_row
from crm.models import User
from crm.services import create_contacts_from_mail
from governance.audit import Actor, build_event, record_event, record_events

log = logging.getLogger(__name__)
Status = RawMessage.Status
RETRYABLE = (Status.PENDING, Status.FAILED)
RACE_RETRIES = 2
MAX_CATEGORIES = 50
PIPELINE = Actor("worker", None, "pipeline")  # who creates contacts from captured mail


class DedupeRace(Exception):
    """The batch's INSERT found Message-IDs that another transaction stored first."""

    def __init__(self, keys: set[str]) -> None:
        super().__init__(f"{len(keys)} Message-ID(s) stored concurrently")
        self.keys = keys


@dataclass(frozen=True)
class ProcessOutcome:
    raw_id: int
    status: str
    reason_code: str
    email_id: int | None
    duplicate: bool


def parse_limits() -> ParseLimits:
    return ParseLimits(
        max_bytes=settings.MAILWARDEN_MAX_MESSAGE_BYTES,
        max_depth=settings.MAILWARDEN_MAX_MIME_DEPTH,
        max_parts=settings.MAILWARDEN_MAX_MIME_PARTS,
        max_headers=settings.MAILWARDEN_MAX_HEADERS,
        max_body_chars=settings.MAILWARDEN_MAX_BODY_CHARS,
    )


def process_raw_message(raw_id: int) -> ProcessOutcome:
    """Process one stored raw message (see process_raw_messages)."""
    outcomes = process_raw_messages([raw_id])
    if outcomes:
        return outcomes[0]
    # Another worker holds the row (skip_locked): wait for it, then report what it decided.
    with transaction.atomic():
        raw = RawMessage.objects.select_for_update().filter(pk=raw_id).first()
    if raw is None:
        return ProcessOutcome(raw_id, "missing", "not_found", None, False)
    return outcome_of(raw)


def process_raw_messages(raw_ids: list[int]) -> list[ProcessOutcome]:
    """Process stored raw messages; returns one outcome per id that exists, in id order."""
    ids = sorted(set(raw_ids))
    if not ids:
        return []
    try:
        for _ in range(RACE_RETRIES):
            try:
                return process_batch(ids)
            except DedupeRace as race:
                # Another worker committed some of these Message-IDs while this batch ran: its
                # transaction is rolled back; the next pass sees their rows and dedupes.
                log.info("batch lost a Message-ID race (%d); processing it again", len(race.keys))
        return process_batch(ids)
    except Exception:
        if len(ids) > 1:
            log.warning(
                "batch of %d failed; processing its messages one by one", len(ids), exc_info=True
            )
            return [o for i in ids for o in process_raw_messages([i])]
        return [mark_failed(ids[0], traceback.format_exc())]


def process_batch(ids: list[int]) -> list[ProcessOutcome]:
    with transaction.atomic():
        raws = lock_raws(ids)
        works = [Work(raw=r) for r in raws if r.status in RETRYABLE]
        done = [outcome_of(r) for r in raws if r.status not in RETRYABLE]
        limits = parse_limits()
        for w in works:
            w.raw.attempts += 1
            parse_step(w, limits)
        active = sorted((w for w in works if not w.status), key=lambda w: (w.parsed.date, w.raw.pk))
        ctx = BatchContext(active)
        ctx.now = timezone.now()
        ctx.preload()
        # Only a submission to a capture address checks the sender against the user's own
        # addresses (capture/gate.py): load them for those users alone.
        own = own_addresses_by_user(
            {
                w.raw.user_id
                for w in active
                if w.raw.user_id
                and w.raw.channel in SUBMITTED_CHANNELS
                and w.raw.capture_address_id
            }
        )
        for w in active:
            process_one(ctx, w, own.get(w.raw.user_id or 0, set()))
        link_items(ctx)
        flush(ctx, works)
    return sorted(done + [outcome_of(w.raw, w.duplicate) for w in works], key=lambda o: o.raw_id)


def lock_raws(ids: list[int]) -> list[RawMessage]:
    """The batch's raw rows in id order, locked; rows another worker holds are skipped."""
    if connection.vendor == "postgresql":
        # The ids as one binary array: the ORM's IN list and query compilation cost more
        # client CPU than the query (~2% of a worker's time, bench/ingest.py).
        fields = RawMessage._meta.concrete_fields
        rows = execute_binary(
            f"SELECT {', '.join(f.column for f in fields)} FROM {RawMessage._meta.db_table}"  # noqa: S608
            " WHERE id = ANY(%b::bigint[]) ORDER BY id FOR UPDATE SKIP LOCKED",
            [ids],
            fetch=True,
        )
        # What the ORM's converters do with these columns: JSON arrives as text.
        json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
        names = [f.attname for f in fields]
        raws = []
        for row in rows:
            row = list(row)
            for i in json_at:
                row[i] = fields[i].from_db_value(row[i], None, connection)
            raws.append(RawMessage.from_db("default", names, row))
        return raws
    qs = RawMessage.objects.filter(pk__in=ids).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs)


def parse_step(work: Work, limits: ParseLimits | None = None) -> None:
    """Bytes → ParsedEmail; a forward sent to a capture address yields its original."""
    raw = work.raw
    try:
        data = storage.read_raw(raw.storage_path)
    except FileNotFoundError:
        raise RuntimeError("raw bytes missing from the raw store") from None
    try:
        parsed = parse_email(data, received_at=raw.received_at, limits=limits or parse_limits())
    except InputRejected as e:
        reject(work, e.code, e.detail)
        return
    work.parsed = parsed
    if raw.channel in SUBMITTED_CHANNELS and addressed_to_capture(raw, parsed):
        found = extract_forwarded_original(parsed, received_at=raw.received_at)
        if found.parsed is not None and found.recovered_headers:
            work.wrapper, work.parsed = parsed, found.parsed
        elif found.method != "none":
            work.forwarded_flag = "original_not_recovered"


def addressed_to_capture(raw: RawMessage, parsed) -> bool:
    """The user sent or forwarded the mail TO the capture address (a BCC leaves no header trace)."""
    envelope = {a.lower() for a in raw.envelope_to}
    return bool(envelope & {a.address for a in (*parsed.to, *parsed.cc)})


def own_addresses_by_user(user_ids: set[int]) -> dict[int, set[str]]:
    if not user_ids:
        return {}
    # own_addresses() reads the addresses itself (a prefetch would go unused).
    return {user.pk: user.own_addresses() for user in User.objects.filter(pk__in=user_ids)}


def process_one(ctx: BatchContext, work: Work, own: set[str]) -> None:
    parsed = work.parsed
    assert parsed is not None
    # The gate decides per capture, before dedupe: a colleague's earlier capture must not
    # bypass this user's never-log list, and a stranger repeating a stored Message-ID at a
    # capture address must not gain a Capture row.
    try:
        gate_message(ctx, work, own)
    except InputRejected as e:
        reject(work, e.code, e.detail)
        return
    existing = ctx.emails_by_mid.get(parsed.message_id)
    if existing is not None:
        record_duplicate(ctx, work, existing)
        return
    direction = derive_direction(ctx, parsed)
    thread = assign_thread(ctx, work)
    try:
        gate_thread(ctx, work, thread)
    except InputRejected as e:
        reject(work, e.code, e.detail)
        return
    email = new_row(
        EmailMessage,
        message_id=parsed.message_id,
        message_id_synthesised=parsed.message_id_synthesised,
        thread=thread,
        kind=EmailMessage.Kind.MEETING if parsed.calendar else EmailMessage.Kind.EMAIL,
        date=parsed.date,
        date_flag=parsed.date_flag,
        direction=direction,
        from_address=parsed.from_[0].address if parsed.from_ else "",
        from_name=(parsed.from_[0].name if parsed.from_ else "")[:300],
        in_reply_to=parsed.in_reply_to[:995],
        references=list(parsed.references),
        stored=work.stored,
        gate_reasons=work.gate_reasons,
        private=work.private,
        auto_generated=parsed.auto_generated,
        forwarded_flag=work.forwarded_flag,
        size=parsed.size,
        has_attachments=any(not a.inline for a in parsed.attachments),
        defects=list(parsed.defects)[:100],
        headers=[list(h) for h in parsed.headers[:200]]
        if work.stored == EmailMessage.Stored.FULL
        else [],
        categories=_categories(ctx, work),
        first_raw=work.raw,
        **body_fields(parsed, work.stored),
    )
    # Inserted with the batch's other new emails at flush (one statement); a Message-ID another
    # worker committed meanwhile makes the batch start over (DedupeRace) and then dedupe.
    ctx.new_emails.append(email)
    work.email = email
    ctx.emails_by_mid[parsed.message_id] = email
    touch_thread(ctx, thread, work)
    work.participants = resolve_participants(ctx, work, direction)
    ctx.new_participants.extend(work.participants)
    stored_refs = set()
    for ref in {parsed.in_reply_to, *parsed.references} - {"", parsed.message_id}:
        ctx.children_threads[ref].add(thread.pk)
        # A MessageRef is how a parent that arrives later finds the replies that came first
        # (and how siblings of a missing parent find each other). A reference to a message
        # that is stored, or new in this batch, needs none: that message never arrives
        # again (a second capture dedupes), and this reply has just joined its thread. In
        # complete threads that is nearly every reference (~3 rows a message otherwise).
        if ref in ctx.emails_by_mid:
            continue
        stored = ref[:995]  # the column's length
        if stored not in stored_refs:
            stored_refs.add(stored)
            ctx.new_refs.append(new_row(MessageRef, email=email, ref=stored))
    if not work.private:  # private mail links to nothing (docs/governance.md, "Private mail")
        apply_link_rules(ctx, work, thread.pk)
    store_attachments(ctx, work)
    store_meeting(ctx, work)
    record_capture(ctx, work, email, duplicate=False)


def record_duplicate(ctx: BatchContext, work: Work, email: EmailMessage) -> None:
    """The message is already stored: add this capture, and the records the user chose now
    (saving a logged mail again from the add-in links it to more records, not a copy)."""
    record_capture(ctx, work, email, duplicate=True)
    chosen = work.raw.options.get("links") or {}
    if chosen:
        link_chosen_records(ctx, work, email.thread_id, chosen)
    categories = _categories(ctx, work)
    if categories:
        # The email may be new in this very batch: its pk is known at flush.
        ctx.categories_added.append((email, categories, work.raw))


def _categories(ctx: BatchContext, work: Work) -> list[str]:
    """The add-in's chosen names that are categories (the API accepted only active ones; a
    category deactivated since still counts, a name that is no category is dropped)."""
    chosen = [str(c)[:100] for c in work.raw.options.get("categories", [])][:MAX_CATEGORIES]
    if not chosen:
        return []
    if ctx.category_names is None:
        # One query per batch, for every name its messages chose.
        wanted = {str(c)[:100] for w in ctx.works for c in w.raw.options.get("categories", [])}
        ctx.category_names = set(
            Category.objects.filter(name__in=wanted).values_list("name", flat=True)
        )
    return [c for c in chosen if c in ctx.category_names]


def add_categories(ctx: BatchContext) -> None:
    """Categories chosen when an already logged mail is saved again are added to it (in the
    order first chosen; the message's row locked, so concurrent saves add up)."""
    wanted = ctx.categories_added
    if not wanted:
        return
    emails = {
        e.pk: e
        for e in EmailMessage.objects.select_for_update()
        .filter(pk__in=[e.pk for e, _, _ in wanted])
        .only("id", "categories")
    }
    changed = {}
    for target, categories, raw in wanted:
        email = emails.get(target.pk)
        if email is None:
            continue
        have = list(email.categories or [])
        new = [c for c in dict.fromkeys(categories) if c not in have]
        if not new:
            continue
        email.categories = (have + new)[:MAX_CATEGORIES]
        changed[email.pk] = email
        ctx.audit.append(worker_event("email.categorised", raw, email, raw=raw.pk, added=new))
    if changed:
        EmailMessage.objects.bulk_update(list(changed.values()), ["categories"])


def worker_event(action: str, raw: RawMessage, obj, /, **detail):
    """An audit event the pipeline writes about `obj` for the capture of `raw`."""
    return build_event(
        action,
        actor=Actor("worker", raw.user_id, "pipeline"),
        obj=obj,
        channel=raw.channel,
        detail=detail,
    )


def record_capture(ctx: BatchContext, work: Work, email: EmailMessage, *, duplicate: bool) -> None:
    raw = work.raw
    work.email, work.duplicate = email, duplicate
    work.status = Status.PROCESSED
    ctx.new_captures.append(
        new_row(
            Capture,
            email=email,
            raw=raw,
            user_id=raw.user_id,
            channel=raw.channel,
            source=raw.source,
            captured_at=raw.received_at,
        )
    )
    ctx.captured.append((work, email, duplicate))


def reject(work: Work, code: str, detail: str = "") -> None:
    work.status = Status.REJECTED
    work.reason_code = code[:60]
    work.reason_detail = detail[:2000]
    log.info("raw message %s rejected: %s", work.raw.pk, code)


def flush(ctx: BatchContext, works: list[Work]) -> None:
    """Write what the batch produced in bulk, then settle each raw message's status."""
    bulk_insert(Thread, list(ctx.pending_threads.values()))
    ctx.pending_threads.clear()
    lost = insert_skipping_conflicts(EmailMessage, ctx.new_emails, "message_id")
    if lost:
        raise DedupeRace(lost)
    for work, email, duplicate in ctx.captured:
        raw = work.raw
        ctx.audit.append(
            worker_event(
                "email.captured", raw, email, raw=raw.pk, duplicate=duplicate, stored=email.stored
            )
        )
    store_meetings(ctx)
    create_contacts_from_mail(ctx.new_contacts, actor=PIPELINE)
    bulk_insert(Participant, ctx.new_participants, batch_size=1000)
    reviews = ambiguous_contact_reviews(ctx)
    for review in ctx.new_reviews:
        review.thread_id = ctx.resolve_thread_id(review.thread_id)
    bulk_insert(ReviewItem, reviews + ctx.new_reviews)
    # Plain inserts, no ON CONFLICT (a speculative insertion per row, ~40% of their cost on
    # the server): every ref belongs to an email inserted just above and is unique per email.
    bulk_insert(MessageRef, ctx.new_refs, batch_size=1000)
    for link in ctx.new_links:
        link.thread_id = ctx.resolve_thread_id(link.thread_id)
    bulk_insert(ThreadLink, ctx.new_links, ignore_conflicts=True, batch_size=1000)
    bulk_insert(UnmatchedReference, ctx.new_unmatched_refs)
    flush_blobs(ctx)
    bulk_insert(Attachment, ctx.new_attachments, batch_size=500)
    bulk_insert(Capture, ctx.new_captures, batch_size=1000)
    dirty = {ctx.resolve_thread_id(t) for t in ctx.dirty_threads}
    refresh_thread_stats(dirty)
    # Links added to threads this batch did not touch (a mail saved again from the add-in).
    sync_link_dates({link.thread_id for link in ctx.new_links} - dirty)
    now = timezone.now()
    for w in works:
        raw = w.raw
        raw.status = w.status or Status.FAILED
        raw.reason_code = w.reason_code
        raw.reason_detail = w.reason_detail
        raw.traceback = ""
        raw.processed_at = now
        raw.email = w.email
        if w.status == Status.REJECTED:
            ctx.audit.append(worker_event("raw.rejected", raw, raw, reason=w.reason_code))
    save_raw_outcomes([w.raw for w in works], now)
    add_categories(ctx)
    record_events(ctx.audit)


def save_raw_outcomes(raws: list[RawMessage], now) -> None:
    """Settle the raw rows.

    PostgreSQL: one UPDATE joined to the batch's values (unnest, bound in binary), so each row
    gets one new version; bulk_update over eight fields builds a CASE per field and row and
    cost ~2-3 ms a message (bench/ingest.py). Elsewhere: one UPDATE per distinct outcome, then
    the email ids.
    """
    for raw in raws:
        raw.updated = now
        raw.processed_at = now
    if connection.vendor == "postgresql":
        _save_raw_outcomes_pg(raws, now)
        return
    groups: dict[tuple, list[int]] = {}
    for raw in raws:
        key = (raw.status, raw.reason_code, raw.reason_detail, raw.traceback, raw.attempts)
        groups.setdefault(key, []).append(raw.pk)
    for (status, code, detail, tb, attempts), ids in groups.items():
        RawMessage.objects.filter(pk__in=ids).update(
            status=status,
            reason_code=code,
            reason_detail=detail,
            traceback=tb,
            attempts=attempts,
            processed_at=now,
            updated=now,
        )
    with_email = [r for r in raws if r.email_id]
    if with_email:
        RawMessage.objects.bulk_update(with_email, ["email"], batch_size=500)


def _save_raw_outcomes_pg(raws: list[RawMessage], now) -> None:
    if not raws:
        return
    assert RawMessage._meta.db_table == "capture_rawmessage"
    params = [
        now,
        now,
        [r.pk for r in raws],
        [r.status for r in raws],
        [r.reason_code for r in raws],
        [r.reason_detail for r in raws],
        [r.traceback for r in raws],
        [r.attempts for r in raws],
        [r.email_id for r in raws],
    ]
    execute_binary(_SETTLE_RAWS_PG, params)


_SETTLE_RAWS_PG = """
UPDATE capture_rawmessage AS r
SET status = v.status, reason_code = v.reason_code, reason_detail = v.reason_detail,
    traceback = v.traceback, attempts = v.attempts, email_id = v.email_id,
    processed_at = %b, updated = %b
FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[], %b::integer[],
            %b::bigint[]) AS v(id, status, reason_code, reason_detail, traceback, attempts, email_id)
WHERE r.id = v.id
"""


def refresh_thread_stats(thread_ids: set[int]) -> None:
    """Recount from the rows, so concurrent workers touching one thread never lose a count."""
    if not thread_ids:
        return
    if connection.vendor == "postgresql":
        # One grouped scan joined to the threads, instead of three correlated subqueries
        # per thread.
        assert Thread._meta.db_table == "capture_thread"
        assert EmailMessage._meta.db_table == "capture_emailmessage"
        execute_binary(_REFRESH_THREADS_PG, [timezone.now(), sorted(thread_ids)])
        sync_link_dates(thread_ids)
        return
    msgs = EmailMessage.objects.filter(thread=OuterRef("pk")).values("thread")
    Thread.objects.filter(pk__in=thread_ids).update(
        message_count=Subquery(msgs.annotate(n=Count("pk")).values("n")[:1]),
        first_at=Subquery(msgs.annotate(m=Min("date")).values("m")[:1]),
        last_at=Subquery(msgs.annotate(m=Max("date")).values("m")[:1]),
        updated=timezone.now(),
    )
    sync_link_dates(thread_ids)


_REFRESH_THREADS_PG = """
UPDATE capture_thread AS t
SET message_count = s.n, first_at = s.first_at, last_at = s.last_at, updated = %b
FROM (
    SELECT thread_id, count(*) AS n, min(date) AS first_at, max(date) AS last_at
    FROM capture_emailmessage WHERE thread_id = ANY(%b::bigint[]) GROUP BY thread_id
) AS s
WHERE t.id = s.thread_id
"""


def outcome_of(raw: RawMessage, duplicate: bool = False) -> ProcessOutcome:
    return ProcessOutcome(raw.pk, raw.status, raw.reason_code, raw.email_id, duplicate)


def mark_failed(raw_id: int, tb: str) -> ProcessOutcome:
    """An unexpected error: keep the traceback; park after the configured number of attempts."""
    with transaction.atomic():
        raw = RawMessage.objects.select_for_update().filter(pk=raw_id).first()
        if raw is None:
            return ProcessOutcome(raw_id, "missing", "not_found", None, False)
        if raw.status not in RETRYABLE:
            return outcome_of(raw)
        raw.attempts += 1
        raw.status = Status.FAILED
        raw.traceback = tb[-20000:]
        parked = raw.attempts >= settings.MAILWARDEN_MAX_PROCESS_ATTEMPTS
        raw.reason_code = "parked" if parked else "error"
        raw.reason_detail = tb.strip().splitlines()[-1][:500] if tb.strip() else ""
        raw.save(
            update_fields=[
                "attempts",
                "status",
                "traceback",
                "reason_code",
                "reason_detail",
                "updated",
            ]
        )
        record_event(
            "raw.failed",
            actor="worker:pipeline",
            obj=raw,
            channel=raw.channel,
            detail={"attempts": raw.attempts, "parked": parked},
        )
    log.error("raw message %s failed (attempt %s)", raw_id, raw.attempts)
    return outcome_of(raw)


__all__ = [
    "ProcessOutcome",
    "mark_failed",
    "process_raw_message",
    "process_raw_messages",
]
