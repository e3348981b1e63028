"""Retention policies: when each message expires, what happens then, and why (docs/retention.md).

`compute_expiry` walks whole threads (a retained message keeps its whole thread), loads the
facts the enabled policies ask about in a few queries per chunk, resolves conflicts in the
order records managers expect (Microsoft Purview), and writes `expires_at`, `expiry_policy`,
`expiry_action` and `expiry_rule` of the rows that changed in one UPDATE per chunk:

1. retention beats deletion: a disposal never happens before the longest retention ends
   (rule ``retention_over_deletion``; ``thread_retained`` when another message of the
   thread is the one retained);
2. the longest retention wins among retention policies (``longest_retention``);
3. explicit beats implicit: a policy with any scope criterion beats the all-mail default
   (``explicit_over_implicit``);
4. the shortest deletion wins among the remaining disposals (``shortest_deletion``);
   ties go to the lower `order`, then the lower id. One policy alone: ``only_policy``.

Holds do not change `expires_at`: they stop the purge (capture/holds.py), and the mail goes
at the first run after the last covering hold is released.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext

from capture import dispatch
from capture.models import (
    Capture,
    EmailMessage,
    ExpiryJob,
    Participant,
    RetentionPolicy,
    Thread,
    ThreadLink,
)
from capture.models.raw import Channel
from core.db.bulk import execute_arrays, execute_binary
from core.dispatch import on_commit_send
from crm.models import Item
from governance.audit import record_event
from governance.consent import deciding_records
from governance.models import ConsentRecord

log = logging.getLogger(__name__)

RECOMPUTE_TASK = dispatch.RECOMPUTE_EXPIRY
THREAD_CHUNK = 2000
FROZEN = frozenset({"in_review", "reviewed", "restored"})
HORIZONS = (("now", 0), ("7d", 7), ("30d", 30), ("90d", 90))
INFINITY = datetime.max.replace(tzinfo=UTC)

Trigger = RetentionPolicy.Trigger
Action = RetentionPolicy.Action

SCOPE_LIST_FIELDS = (
    "link_kinds",
    "categories",
    "channels",
    "directions",
    "stored_levels",
    "legal_bases",
)
CHOICES = {
    "link_kinds": frozenset(RetentionPolicy.LINK_KINDS),
    "channels": frozenset(Channel.values),
    "directions": frozenset(EmailMessage.Direction.values),
    "stored_levels": frozenset(EmailMessage.Stored.values),
    "legal_bases": frozenset(ConsentRecord.Basis.values),
}


class PolicyRejected(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Spec:
    """A policy as the computation sees it (also for an unsaved policy in a preview)."""

    id: int | None
    order: int
    trigger: str
    days: int
    action: str
    link_kinds: frozenset[str] = frozenset()
    org_ids: frozenset[int] = frozenset()
    categories: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    directions: frozenset[str] = frozenset()
    stored_levels: frozenset[str] = frozenset()
    legal_bases: frozenset[str] = frozenset()
    unlinked_only: bool = False

    @property
    def explicit(self) -> bool:
        return bool(
            self.link_kinds
            or self.org_ids
            or self.categories
            or self.channels
            or self.directions
            or self.stored_levels
            or self.legal_bases
            or self.unlinked_only
        )

    @classmethod
    def of(cls, policy: RetentionPolicy, org_ids: Iterable[int] | None = None) -> Spec:
        if org_ids is None:
            org_ids = [o.pk for o in policy.organizations.all()] if policy.pk else []
        return cls(
            id=policy.pk,
            order=policy.order,
            trigger=policy.trigger,
            days=policy.duration_days,
            action=policy.action,
            link_kinds=frozenset(policy.link_kinds or ()),
            org_ids=frozenset(org_ids),
            categories=frozenset(policy.categories or ()),
            channels=frozenset(policy.channels or ()),
            directions=frozenset(policy.directions or ()),
            stored_levels=frozenset(policy.stored_levels or ()),
            legal_bases=frozenset(policy.legal_bases or ()),
            unlinked_only=policy.unlinked_only,
        )


def enabled_specs() -> list[Spec]:
    return [
        Spec.of(p)
        for p in RetentionPolicy.objects.filter(enabled=True).prefetch_related("organizations")
    ]


@dataclass
class Facts:
    id: int
    thread_id: int
    date: datetime
    direction: str
    stored: str
    categories: frozenset[str]
    disposition: str
    current: tuple[Any, ...]  # (expires_at, policy_id, action, rule)
    channels: set[str] = field(default_factory=set)
    link_kinds: set[str] = field(default_factory=set)
    org_ids: set[int] = field(default_factory=set)
    bases: set[str] = field(default_factory=set)
    linked: bool = False
    thread_last: datetime | None = None
    items_closed: datetime | None = None  # all linked items closed: the last closing
    withdrawn_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    expires_at: datetime | None
    policy_id: int | None
    action: str
    rule: str

    def row(self) -> tuple[Any, ...]:
        return (self.expires_at, self.policy_id, self.action, self.rule)


NO_POLICY = Outcome(None, None, "", "")


# --- the facts of a chunk of threads --------------------------------------------------------


def load_facts(thread_ids: list[int], specs: list[Spec]) -> list[Facts]:
    # an empty category list comes back as NULL: nothing to parse for most messages
    empty = "'[]'::jsonb" if connection.vendor == "postgresql" else "'[]'"
    rows = execute_arrays(
        "SELECT id, thread_id, date, direction, stored,"  # noqa: S608
        f" CASE WHEN categories = {empty} THEN NULL ELSE categories END,"
        " disposition, expires_at,"
        f" expiry_policy_id, expiry_action, expiry_rule FROM {EmailMessage._meta.db_table}"
        " WHERE thread_id = ANY(%b::bigint[])",
        [sorted(thread_ids)],
        fetch=True,
    )
    if connection.vendor != "postgresql":  # SQLite's raw rows: naive UTC datetimes
        rows = [(*r[:2], _aware(r[2]), *r[3:7], _aware(r[7]), *r[8:]) for r in rows]
    facts = [
        Facts(r[0], r[1], r[2], r[3], r[4], _categories(r[5]), r[6], tuple(r[7:])) for r in rows
    ]
    if not facts:
        return facts
    by_id = {f.id: f for f in facts}
    by_thread: dict[int, list[Facts]] = defaultdict(list)
    for f in facts:
        by_thread[f.thread_id].append(f)
    need = _needed(specs)
    if "channels" in need:
        for email_id, channel in Capture.objects.filter(
            any_of(Capture, "email_id", by_id)
        ).values_list("email_id", "channel"):
            by_id[email_id].channels.add(channel)
    if "thread" in need:
        for tid, last in Thread.objects.filter(any_of(Thread, "id", by_thread)).values_list(
            "pk", "last_at"
        ):
            for f in by_thread[tid]:
                f.thread_last = last
    if "links" in need:
        open_items: set[int] = set()
        closed: dict[int, datetime] = {}
        for tid, contact, org, item, kind, status, closed_at, item_org in ThreadLink.objects.filter(
            any_of(ThreadLink, "thread_id", by_thread)
        ).values_list(
            "thread_id",
            "contact_id",
            "organization_id",
            "item_id",
            "item__kind",
            "item__status",
            "item__closed_at",
            "item__organization_id",
        ):
            for f in by_thread[tid]:
                f.linked = True
                if contact:
                    f.link_kinds.add("contact")
                if org:
                    f.link_kinds.add("organization")
                    f.org_ids.add(org)
                if item:
                    f.link_kinds.add(kind)
                    if item_org:
                        f.org_ids.add(item_org)
            if item:
                if status == "open" or closed_at is None:
                    open_items.add(tid)
                else:
                    closed[tid] = max(closed.get(tid, closed_at), closed_at)
        for tid, at in closed.items():
            if tid not in open_items:
                for f in by_thread[tid]:
                    f.items_closed = at
    if "participants" in need:
        contacts: dict[int, set[int]] = defaultdict(set)
        for email_id, contact_id, org_id in Participant.objects.filter(
            any_of(Participant, "email_id", by_id)
        ).values_list("email_id", "contact_id", "organization_id"):
            if org_id:
                by_id[email_id].org_ids.add(org_id)
            if contact_id:
                contacts[contact_id].add(email_id)
        if contacts and "consent" in need:
            for contact_id, purpose, prov in deciding_records(contacts):
                if purpose != ConsentRecord.Purpose.PROCESSING:
                    continue
                for email_id in contacts[contact_id]:
                    f = by_id[email_id]
                    if prov.action == ConsentRecord.Action.GRANTED:
                        f.bases.add(prov.basis)
                    elif prov.action == ConsentRecord.Action.WITHDRAWN:
                        at = prov.effective_at
                        f.withdrawn_at = at if f.withdrawn_at is None else min(f.withdrawn_at, at)
    return facts


def _aware(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def _categories(value: Any) -> frozenset[str]:
    if isinstance(value, str | bytes):  # jsonb as text (Django's loader) or parsed
        value = json.loads(value)
    return frozenset(value or ())


def any_of(model: type[models.Model], column: str, ids: Iterable[int]) -> RawSQL:
    """A filter `column = ANY(ids)`: the ids bound as one array parameter (an `IN (...)`
    list of thousands of parameters costs more to build and parse than the query runs)."""
    name = f'"{model._meta.db_table}"."{column}"'
    if connection.vendor != "postgresql":  # SQLite: the list as one JSON text
        return RawSQL(  # noqa: S611 (names from the model, the ids bound)
            f"{name} IN (SELECT value FROM json_each(%s))",  # noqa: S608
            (json.dumps(sorted(ids)),),
            output_field=models.BooleanField(),
        )
    return RawSQL(  # noqa: S611 (names from the model, the ids bound)
        f"{name} = ANY(%s::bigint[])", (sorted(ids),), output_field=models.BooleanField()
    )


def _needed(specs: list[Spec]) -> set[str]:
    need: set[str] = set()
    for s in specs:
        if s.channels:
            need.add("channels")
        if s.trigger == Trigger.THREAD_ACTIVITY:
            need.add("thread")
        if s.link_kinds or s.org_ids or s.unlinked_only or s.trigger == Trigger.ITEM_CLOSED:
            need.add("links")
        if s.org_ids:
            need.add("participants")
        if s.legal_bases or s.trigger == Trigger.CONSENT_WITHDRAWN:
            need |= {"participants", "consent"}
    return need


# --- resolution ---------------------------------------------------------------------------


def matches(spec: Spec, f: Facts) -> bool:
    if spec.unlinked_only and f.linked:
        return False
    if spec.link_kinds and not (spec.link_kinds & f.link_kinds):
        return False
    if spec.org_ids and not (spec.org_ids & f.org_ids):
        return False
    if spec.categories and not (spec.categories & f.categories):
        return False
    if spec.channels and not (spec.channels & f.channels):
        return False
    if spec.directions and f.direction not in spec.directions:
        return False
    if spec.stored_levels and f.stored not in spec.stored_levels:
        return False
    return not (spec.legal_bases and not (spec.legal_bases & f.bases))


def trigger_date(spec: Spec, f: Facts) -> datetime | None:
    if spec.trigger == Trigger.RECEIVED:
        return f.date
    if spec.trigger == Trigger.THREAD_ACTIVITY:
        return f.thread_last or f.date
    if spec.trigger == Trigger.ITEM_CLOSED:
        return f.items_closed
    return f.withdrawn_at


def _applied(disposition: str) -> set[str]:
    if not disposition:
        return set()
    done = set(filter(None, disposition.split(",")))
    return {
        a for a, d in ((Action.REDACT, "redacted"), (Action.ANONYMISE, "anonymised")) if d in done
    }


def own_outcome(f: Facts, specs: list[Spec]) -> tuple[Outcome, datetime | None, Spec | None]:
    """(the disposal this message's policies choose, its own retention end, that retention's
    policy). A retention whose trigger has not happened yet retains indefinitely (INFINITY)."""
    retain_until: datetime | None = None
    retain_spec: Spec | None = None
    disposals: list[tuple[datetime, Spec]] = []
    skip = _applied(f.disposition)
    for s in specs:
        if not matches(s, f):
            continue
        start = trigger_date(s, f)
        end = INFINITY if start is None else _plus(start, s.days)
        if s.action == Action.RETAIN:
            if retain_until is None or end > retain_until:
                retain_until, retain_spec = end, s
        elif start is not None and s.action not in skip:
            disposals.append((end, s))
    if not disposals:
        if retain_spec is not None:
            return (
                Outcome(None, retain_spec.id, Action.RETAIN, "longest_retention"),
                retain_until,
                retain_spec,
            )
        return NO_POLICY, None, None
    explicit = [d for d in disposals if d[1].explicit]
    pool = explicit or disposals
    end, spec = min(pool, key=lambda d: (d[0], d[1].order, d[1].id or 0))
    if len(disposals) == 1:
        rule = "only_policy"
    elif explicit and len(explicit) < len(disposals):
        rule = "explicit_over_implicit"
    else:
        rule = "shortest_deletion"
    return Outcome(end, spec.id, spec.action, rule), retain_until, retain_spec


def _plus(start: datetime, days: int) -> datetime:
    try:
        return start + timedelta(days=days)
    except OverflowError:
        return INFINITY


def resolve(facts: list[Facts], specs: list[Spec]) -> dict[int, Outcome]:
    """Every message's outcome, whole threads at a time (facts hold complete threads)."""
    own: dict[int, tuple[Outcome, datetime | None, Spec | None]] = {}
    thread_retain: dict[int, tuple[datetime, Spec]] = {}
    for f in facts:
        own[f.id] = got = own_outcome(f, specs)
        if got[1] is not None:
            best = thread_retain.get(f.thread_id)
            if best is None or got[1] > best[0]:
                thread_retain[f.thread_id] = (got[1], got[2])
    result: dict[int, Outcome] = {}
    for f in facts:
        outcome, retain_until, _ = own[f.id]
        if outcome.expires_at is not None and outcome.action != Action.RETAIN:
            tr = thread_retain.get(f.thread_id)
            if tr is not None and tr[0] > outcome.expires_at:
                mine = retain_until is not None and retain_until >= tr[0]
                rule = "retention_over_deletion" if mine else "thread_retained"
                outcome = Outcome(
                    None if tr[0] == INFINITY else tr[0],
                    outcome.policy_id,
                    outcome.action,
                    f"{rule}:{tr[1].id or 'new'}",
                )
        result[f.id] = outcome
    return result


# --- bulk recomputation -----------------------------------------------------------------


def _thread_chunks(scope: dict[str, Any], chunk: int) -> Iterator[list[int]]:
    if scope.get("threads") is not None:
        ids = sorted({int(t) for t in scope["threads"]})
        for i in range(0, len(ids), chunk):
            yield ids[i : i + chunk]
        return
    qs = Thread.objects.order_by("pk").values_list("pk", flat=True)
    if scope.get("since_message"):
        qs = qs.filter(
            pk__in=EmailMessage.objects.filter(pk__gt=scope["since_message"]).values("thread_id")
        )
    last = 0
    while True:
        ids = list(qs.filter(pk__gt=last)[:chunk])
        if not ids:
            return
        yield ids
        last = ids[-1]


def threads_of_contacts(contact_ids: Iterable[int]) -> list[int]:
    ids = list(contact_ids)
    links = ThreadLink.objects.filter(contact_id__in=ids).values_list("thread_id", flat=True)
    parts = EmailMessage.objects.filter(
        pk__in=Participant.objects.filter(contact_id__in=ids).values("email_id")
    ).values_list("thread_id", flat=True)
    return sorted(set(links) | set(parts))


def threads_of_items(item_ids: Iterable[int]) -> list[int]:
    return sorted(
        set(
            ThreadLink.objects.filter(item_id__in=list(item_ids)).values_list(
                "thread_id", flat=True
            )
        )
    )


def compute_expiry(
    scope: dict[str, Any] | None = None,
    *,
    specs: list[Spec] | None = None,
    write: bool = True,
    progress: Callable[[int], None] | None = None,
    chunk: int = THREAD_CHUNK,
) -> Iterator[tuple[list[Facts], dict[int, Outcome]]]:
    """Compute (and with `write`, store) the outcome of every message of the threads in
    `scope` ({} = all; {"threads": [...]}; {"since_message": id}); yields each chunk."""
    specs = enabled_specs() if specs is None else specs
    for thread_ids in _thread_chunks(scope or {}, chunk):
        facts = [f for f in load_facts(thread_ids, specs) if f.disposition not in FROZEN]
        outcomes = resolve(facts, specs)
        if write:
            changed = [(f.id, outcomes[f.id]) for f in facts if outcomes[f.id].row() != f.current]
            _write(changed)
        if progress is not None:
            progress(len(thread_ids))
        yield facts, outcomes


def _write(changed: list[tuple[int, Outcome]]) -> None:
    if not changed:
        return
    if connection.vendor == "postgresql":
        table = EmailMessage._meta.db_table
        execute_binary(
            f"UPDATE {table} AS e SET expires_at = v.exp, expiry_policy_id = v.pol, "  # noqa: S608
            "expiry_action = v.act, expiry_rule = v.rule FROM unnest("
            "%b::bigint[], %b::timestamptz[], %b::bigint[], %b::text[], %b::text[]) "
            "AS v(id, exp, pol, act, rule) WHERE e.id = v.id",
            [
                [pk for pk, _ in changed],
                [o.expires_at for _, o in changed],
                [o.policy_id for _, o in changed],
                [o.action for _, o in changed],
                [o.rule for _, o in changed],
            ],
        )
        return
    objs = []
    for pk, o in changed:
        e = EmailMessage(pk=pk)
        e.expires_at, e.expiry_policy_id, e.expiry_action, e.expiry_rule = o.row()
        objs.append(e)
    EmailMessage.objects.bulk_update(
        objs, ["expires_at", "expiry_policy_id", "expiry_action", "expiry_rule"], batch_size=500
    )


# --- the common case in SQL -------------------------------------------------------------------
#
# One enabled policy counted from the message's date, scoped (if at all) by direction and
# stored level: every message's outcome is then a function of its own row (no thread, link,
# participant or consent fact, no conflict), so on PostgreSQL one UPDATE per chunk computes
# and writes it where it changed, as `resolve` would (tests/capture/retention/
# test_conflicts.py compares the two). Any other set of policies takes the Python path.

SQL_CHUNK = 20_000  # threads per statement


def sql_plan(specs: list[Spec]) -> Spec | bool | None:
    """The single policy the SQL path computes; None with no policy at all (every outcome
    cleared); False when the policies need the Python path."""
    if connection.vendor != "postgresql":
        return False
    if not specs:
        return None
    if len(specs) > 1:
        return False
    s = specs[0]
    if s.trigger != Trigger.RECEIVED or s.id is None:
        return False
    if s.link_kinds or s.org_ids or s.categories or s.channels or s.legal_bases:
        return False
    return False if s.unlinked_only else s


def _sql_chunk(thread_ids: list[int], spec: Spec | None) -> tuple[int, int]:
    """(messages, changed) of one chunk of threads, computed and written in one statement:
    `s` says whether the policy applies to each message (`hit`), `m` gives its outcome, `u`
    writes the rows whose outcome changed."""
    em = EmailMessage._meta.db_table
    match, match_params = ["TRUE"], []
    outcome, outcome_params = "NULL::timestamptz, NULL::bigint, ''::text, ''::text", []
    if spec is not None:
        if spec.directions:
            match.append("direction = ANY(%b::text[])")
            match_params.append(sorted(spec.directions))
        if spec.stored_levels:
            match.append("stored = ANY(%b::text[])")
            match_params.append(sorted(spec.stored_levels))
        done = {Action.REDACT: "redacted", Action.ANONYMISE: "anonymised"}.get(spec.action)
        if done:  # an action already applied to the message is not chosen again
            match.append(f"NOT '{done}' = ANY(string_to_array(disposition, ','))")
        if spec.action == Action.RETAIN:
            expires, rule = "NULL::timestamptz", "longest_retention"
        else:
            # the session's time zone is UTC (Django's), so a day is 24 hours as in Python;
            # past 10,020 years every date is beyond year 9999 (Python's end of time)
            expires = (
                "LEAST(date + make_interval(days => %b::int),"
                " '9999-12-31 23:59:59.999999+00'::timestamptz)"
            )
            outcome_params.append(min(spec.days, 3_660_000))
            rule = "only_policy"
        outcome = (
            f"CASE WHEN hit THEN {expires} END, CASE WHEN hit THEN %b::bigint END,"
            " CASE WHEN hit THEN %b::text ELSE '' END, CASE WHEN hit THEN %b::text ELSE '' END"
        )
        outcome_params += [spec.id, spec.action, rule]
    rows = execute_arrays(
        f"WITH s AS (SELECT id, date, {' AND '.join(match)} AS hit FROM {em}"  # noqa: S608
        " WHERE thread_id = ANY(%b::bigint[]) AND NOT disposition = ANY(%b::text[])),"
        f" m(id, exp, pol, act, rule) AS (SELECT id, {outcome} FROM s),"
        f" u AS (UPDATE {em} AS e SET expires_at = m.exp, expiry_policy_id = m.pol,"
        " expiry_action = m.act, expiry_rule = m.rule FROM m WHERE e.id = m.id AND"
        " (e.expires_at, e.expiry_policy_id, e.expiry_action, e.expiry_rule)"
        " IS DISTINCT FROM (m.exp, m.pol, m.act, m.rule) RETURNING 1)"
        " SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM u)",
        [*match_params, sorted(thread_ids), sorted(FROZEN), *outcome_params],
        fetch=True,
    )
    return rows[0][0], rows[0][1]


def _recompute_chunks(
    scope: dict[str, Any], progress: Callable[[int], None] | None
) -> Iterator[tuple[int, int, int]]:
    """(threads, messages, changed) per chunk, by SQL where `sql_plan` allows, else Python."""
    specs = enabled_specs()
    plan = sql_plan(specs)
    if plan is not False:
        for thread_ids in _thread_chunks(scope, SQL_CHUNK):
            messages, changed = _sql_chunk(thread_ids, plan)
            if progress is not None:
                progress(len(thread_ids))
            yield len(thread_ids), messages, changed
        return
    for facts, outcomes in compute_expiry(scope, specs=specs, progress=progress):
        changed = sum(1 for f in facts if outcomes[f.id].row() != f.current)
        yield _threads_of(facts), len(facts), changed


def recompute(
    scope: dict[str, Any] | None = None,
    *,
    job: ExpiryJob | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Recompute and store expiry over `scope`, updating `job`'s progress as it goes."""
    scope = scope or {}
    changed = messages = 0
    if job is not None:
        job.status = ExpiryJob.Status.RUNNING
        job.total = (
            len(scope["threads"]) if scope.get("threads") is not None else Thread.objects.count()
        )
        job.save(update_fields=["status", "total"])
    try:
        for threads, chunk_messages, chunk_changed in _recompute_chunks(scope, progress):
            messages += chunk_messages
            changed += chunk_changed
            if job is not None:
                job.done += threads
                ExpiryJob.objects.filter(pk=job.pk).update(done=job.done, changed=changed)
    except Exception as e:
        if job is not None:
            ExpiryJob.objects.filter(pk=job.pk).update(
                status=ExpiryJob.Status.FAILED, finished=timezone.now(), error=type(e).__name__
            )
        raise
    if job is not None:
        ExpiryJob.objects.filter(pk=job.pk).update(
            status=ExpiryJob.Status.DONE, finished=timezone.now(), done=job.total, changed=changed
        )
    return {"messages": messages, "changed": changed}


def _threads_of(facts: list[Facts]) -> int:
    return len({f.thread_id for f in facts})


def queue_recompute(reason: str, scope: dict[str, Any] | None = None) -> ExpiryJob | None:
    """Record a job and queue the task after commit (in-process without a broker). Nothing to
    do without enabled policies unless some message still carries an old outcome."""
    if (
        not RetentionPolicy.objects.filter(enabled=True).exists()
        and not EmailMessage.objects.filter(expiry_action__gt="").exists()
    ):
        return None
    if scope and scope.get("threads") is not None and not scope["threads"]:
        return None
    job = ExpiryJob.objects.create(reason=reason[:120], scope=scope or {})
    transaction.on_commit(on_commit_send(RECOMPUTE_TASK, job.pk))
    return job


def run_job(job_id: int) -> dict[str, int]:
    job = ExpiryJob.objects.filter(pk=job_id).first()
    if job is None or job.status in (ExpiryJob.Status.DONE, ExpiryJob.Status.RUNNING):
        return {"messages": 0, "changed": 0}
    return recompute(job.scope, job=job)


def recompute_new_messages() -> dict[str, int]:
    """Beat: compute expiry for the threads of messages stored since the last such run."""
    last = (
        ExpiryJob.objects.filter(reason="new messages", status=ExpiryJob.Status.DONE)
        .order_by("-pk")
        .values_list("last_message_id", flat=True)
        .first()
    ) or 0
    top = EmailMessage.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if top <= last:
        return {"messages": 0, "changed": 0}
    job = ExpiryJob.objects.create(
        reason="new messages", scope={"since_message": last}, last_message_id=top
    )
    return recompute(job.scope, job=job)


# --- policy doors -------------------------------------------------------------------------


def validate_policy(data: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, allowed in CHOICES.items():
        values = data.get(name) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors[name] = [gettext("Must be a list of strings.")]
            continue
        bad = sorted(set(values) - allowed)
        if bad:
            errors[name] = [
                f"Unknown value(s): {', '.join(bad)}. Choose from {', '.join(sorted(allowed))}."
            ]
    cats = data.get("categories") or []
    if not isinstance(cats, list) or not all(isinstance(v, str) and v for v in cats):
        errors["categories"] = [gettext("Must be a list of category names.")]
    if data.get("action") == Action.REVIEW and not data.get("reviewer"):
        errors["reviewer"] = [gettext("A disposition review needs a named reviewer.")]
    return errors


def spec_from_data(data: dict[str, Any], pk: int | None = None) -> Spec:
    return Spec(
        id=pk,
        order=int(data.get("order") or 0),
        trigger=data.get("trigger") or Trigger.RECEIVED,
        days=int(data["duration_days"]),
        action=data.get("action") or Action.DELETE,
        link_kinds=frozenset(data.get("link_kinds") or ()),
        org_ids=frozenset(int(getattr(o, "pk", o)) for o in data.get("organizations") or ()),
        categories=frozenset(data.get("categories") or ()),
        channels=frozenset(data.get("channels") or ()),
        directions=frozenset(data.get("directions") or ()),
        stored_levels=frozenset(data.get("stored_levels") or ()),
        legal_bases=frozenset(data.get("legal_bases") or ()),
        unlinked_only=bool(data.get("unlinked_only")),
    )


def due_counts_now() -> dict[str, int]:
    now = timezone.now()
    qs = EmailMessage.objects.filter(expires_at__isnull=False).exclude(expiry_action=Action.RETAIN)
    return {
        label: qs.filter(expires_at__lte=now + timedelta(days=days)).count()
        for label, days in HORIZONS
    }


def preview(
    data: dict[str, Any] | None, *, pk: int | None = None, delete: bool = False
) -> dict[str, Any]:
    """How many messages would be due now / within 7 / 30 / 90 days with this policy saved
    (`data`, a policy's fields; `pk` of the policy it changes) or deleted, next to today's
    counts. A full pass over the mail without writing."""
    specs = [s for s in enabled_specs() if pk is None or s.id != pk]
    if data is not None and not delete and data.get("enabled", True):
        specs.append(spec_from_data(data, pk))
    now = timezone.now()
    after = dict.fromkeys((label for label, _ in HORIZONS), 0)
    newly = dict.fromkeys((label for label, _ in HORIZONS), 0)
    for facts, outcomes in compute_expiry({}, specs=specs, write=False):
        for f in facts:
            o = outcomes[f.id]
            if o.expires_at is None or o.action == Action.RETAIN:
                continue
            old = f.current[0] if f.current[2] != Action.RETAIN else None
            for label, days in HORIZONS:
                limit = now + timedelta(days=days)
                if o.expires_at <= limit:
                    after[label] += 1
                    if old is None or old > limit:
                        newly[label] += 1
    return {"before": due_counts_now(), "after": after, "newly_due": newly}


def _policy_detail(policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "enabled": policy.enabled,
        "order": policy.order,
        "trigger": policy.trigger,
        "duration_days": policy.duration_days,
        "action": policy.action,
        "explicit": Spec.of(policy).explicit,
    }


def policy_saved(
    policy: RetentionPolicy, *, created: bool, actor: Any, channel: str, address: str = ""
) -> ExpiryJob | None:
    """Audit a saved policy (M2M saved too) and queue the bulk recomputation."""
    record_event(
        "retention.policy_created" if created else "retention.policy_changed",
        actor=actor,
        obj=policy,
        channel=channel,
        address=address,
        detail=_policy_detail(policy),
    )
    return queue_recompute(f"policy {policy.pk} saved")


def delete_policy(policy: RetentionPolicy, *, actor: Any, channel: str, address: str = "") -> None:
    with transaction.atomic():
        record_event(
            "retention.policy_deleted",
            actor=actor,
            obj=policy,
            channel=channel,
            address=address,
            detail=_policy_detail(policy),
        )
        policy.delete()
        queue_recompute("policy deleted")


# --- hooks: links and consents changed ------------------------------------------------


def on_links_changed(thread_ids: Iterable[int]) -> None:
    queue_recompute("links changed", {"threads": sorted({int(t) for t in thread_ids})})


def on_consent_changed(contact_ids: Iterable[int]) -> None:
    if (
        not RetentionPolicy.objects.filter(enabled=True)
        .filter(Q(trigger=Trigger.CONSENT_WITHDRAWN) | ~Q(legal_bases=[]))
        .exists()
    ):
        return
    queue_recompute("consent changed", {"threads": threads_of_contacts(contact_ids)})


def on_item_changed(item_ids: Iterable[int]) -> None:
    if not RetentionPolicy.objects.filter(enabled=True, trigger=Trigger.ITEM_CLOSED).exists():
        return
    queue_recompute("item changed", {"threads": threads_of_items(item_ids)})


@receiver(post_save, sender=Item, dispatch_uid="capture.retention.item_saved")
def _item_saved(sender, instance: Item, created: bool, **kwargs) -> None:
    """An item closing (or reopening) moves the expiry of its threads' mail (item_closed)."""
    if not created:
        on_item_changed([instance.pk])


# --- why ---------------------------------------------------------------------------------


RULE_TEXT = {
    "only_policy": "the only policy that applies",
    "shortest_deletion": "the shortest disposal among the policies that apply",
    "explicit_over_implicit": "an explicitly scoped policy beats the all-mail default",
    "retention_over_deletion": "a retention policy of this message outlasts its disposal",
    "thread_retained": "another message of the thread is retained that long",
    "longest_retention": "the longest retention; no disposal applies",
    "review_extended": "extended by a disposition review",
    "relabelled": "relabelled by a disposition review",
}


def explain(email: EmailMessage) -> dict[str, Any]:
    """Why this message expires when it does (admin and API)."""
    rule, _, other = (email.expiry_rule or "").partition(":")
    policy = email.expiry_policy
    text = RULE_TEXT.get(rule, "")
    if other and other.isdigit():
        retainer = (
            RetentionPolicy.objects.filter(pk=int(other)).values_list("name", flat=True).first()
        )
        text = f"{text} (retained by policy {retainer or other})"
    return {
        "expires_at": email.expires_at,
        "action": email.expiry_action,
        "policy": policy.pk if policy else None,
        "policy_name": policy.name if policy else "",
        "rule": rule,
        "why": text if email.expiry_rule else "no retention policy applies",
        "disposition": email.disposition,
    }
