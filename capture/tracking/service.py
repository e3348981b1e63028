"""Issuing tracking for a message about to be sent, recording its opens and clicks, and the
summaries the email API, the admin and the timelines show (docs/governance.md, "Tracking").

Issuing asks governance.eligibility.recipient_verdicts for every recipient (the same answer as
the compose check and the capture gate). The pixel and the links are in the one body every
recipient gets, so:

- one recipient: tracked only if that recipient may be tracked; events are attributed to their
  contact(s) (mode "recipient");
- several recipients: events are anonymous (mode "anonymous"), and the mail is tracked only if
  at least one recipient may be tracked and none is refused for a reason of consent or policy
  (never-log, consent withdrawn, no legal basis under privacy mode, tracking consent refused or
  missing under privacy mode, tracking locked off): their opens would be recorded too.
  Internal recipients and, outside privacy mode, addresses that are not contacts are simply not
  tracked themselves; they do not stop the others.

Recording (the /t/ hot path): the request hands the event to the process's buffer
(capture/tracking/buffer.py, `EVENTS`); its thread writes a batch every ~200 ms with one
multi-row INSERT ... SELECT that also re-checks consent per event: nothing is written when the
tracked message is gone or when, between issuance and the event, a contact it was issued for
had their processing consent withdrawn (or basis set to none) or refused tracking.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from capture.models import TrackedContact, TrackedMessage, TrackingEvent
from capture.tracking import tokens
from capture.tracking.buffer import Event, EventBuffer
from capture.visibility import sees_everything, visible_emails
from crm.models import User
from governance import eligibility
from governance.audit import record_event
from governance.models import ConsentRecord, OrgSettings
from governance.settings import effective_settings

DEFAULT_TOKEN_DAYS = 180
MAX_LINKS = 100
MAX_RECIPIENTS = 500
USER_AGENT_MAX = 300

# Verdict reasons that stop a several-recipient mail from being tracked at all (see above).
BLOCKING = frozenset(
    {
        eligibility.NEVER_LOG,
        eligibility.CONSENT_WITHDRAWN,
        eligibility.NO_LEGAL_BASIS,
        eligibility.TRACKING_REFUSED,
        eligibility.NO_TRACKING_CONSENT,
        eligibility.TRACKING_OFF,
        eligibility.INVALID_ADDRESS,
    }
)
# Why a message was not tracked (TrackingResult.reason).
TRACKED = "ok"
NO_ELIGIBLE_RECIPIENT = "no_eligible_recipient"
RECIPIENT_REFUSED = "recipient_refused"


class TrackingConflict(Exception):
    """The Message-ID was issued tracking by another user."""


@dataclass(frozen=True)
class RecipientOutcome:
    address: str
    tracked: bool
    reason: str
    contact_ids: tuple[int, ...]
    internal: bool


@dataclass(frozen=True)
class TrackedLink:
    url: str
    tracked_url: str


@dataclass
class TrackingResult:
    message_id: str
    tracked: bool
    reason: str
    mode: str | None = None
    tracked_message: TrackedMessage | None = None
    open_url: str | None = None
    links: list[TrackedLink] = field(default_factory=list)
    expires_at: datetime | None = None
    recipients: list[RecipientOutcome] = field(default_factory=list)

    @property
    def refused(self) -> list[RecipientOutcome]:
        return [r for r in self.recipients if not r.tracked]


def token_days() -> int:
    return int(getattr(settings, "MAILWARDEN_TRACKING_TOKEN_DAYS", DEFAULT_TOKEN_DAYS))


def base_url(request: Any = None) -> str:
    """Where the /t/ URLs point: MAILWARDEN_TRACKING_BASE_URL, else the API request's host."""
    configured = getattr(settings, "MAILWARDEN_TRACKING_BASE_URL", "")
    if configured:
        return configured.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return ""


def _explicit_request_org(user: User, org: OrgSettings) -> OrgSettings:
    """Asking to track this message is the user's choice for it: a `track` default that is off
    but not locked by the organisation does not refuse it (an unsaved copy of the settings with
    tracking on); a locked "off" still does (reason tracking_off)."""
    track = effective_settings(user, org=org).track
    if track.value or track.locked:
        return org
    explicit = copy.copy(org)
    explicit.track_by_default = True
    explicit.enforce_track = True
    return explicit


def decide_recipients(
    user: User, recipients: Sequence[str], org: OrgSettings
) -> tuple[str, str | None, list[RecipientOutcome]]:
    """(reason, mode, per-recipient outcomes) for these recipients (no writes)."""
    verdicts = eligibility.recipient_verdicts(user, list(recipients), org=org)
    outcomes = [
        RecipientOutcome(a, v.may_track, v.track_reason, v.contact_ids, v.internal)
        for a, v in verdicts.items()
    ]
    eligible = [o for o in outcomes if o.tracked]
    if not eligible:
        return NO_ELIGIBLE_RECIPIENT, None, _none_tracked(outcomes)
    if len(outcomes) == 1:
        return TRACKED, TrackedMessage.Mode.RECIPIENT, outcomes
    if any(not o.tracked and o.reason in BLOCKING for o in outcomes):
        return RECIPIENT_REFUSED, None, _none_tracked(outcomes)
    return TRACKED, TrackedMessage.Mode.ANONYMOUS, outcomes


def _none_tracked(outcomes: list[RecipientOutcome]) -> list[RecipientOutcome]:
    return [
        o if not o.tracked else RecipientOutcome(o.address, False, RECIPIENT_REFUSED, (), False)
        for o in outcomes
    ]


def issue_tracking(
    user: User,
    *,
    message_id: str,
    recipients: Sequence[str],
    links: Sequence[str] = (),
    subject: str = "",
    request: Any = None,
    actor: Any = None,
    channel: str = "api",
    address: str = "",
) -> TrackingResult:
    """Tracking URLs for the message `message_id` (normalised) `user` is about to send, only
    if its recipients allow it (module docstring). Issuing again for the same Message-ID (a
    retry) replaces the recipients and links and re-issues the URLs; another user's Message-ID
    raises TrackingConflict. Writes the audit event `tracking.issued` (no addresses)."""
    org = OrgSettings.load()
    reason, mode, outcomes = decide_recipients(user, recipients, _explicit_request_org(user, org))
    result = TrackingResult(
        message_id=message_id, tracked=False, reason=reason, recipients=outcomes
    )
    if mode is None:
        return result
    now = timezone.now().replace(microsecond=0)
    expires = now + timedelta(days=token_days())
    unique_links = list(dict.fromkeys(links))
    contact_ids = sorted({c for o in outcomes if o.tracked for c in o.contact_ids})
    with transaction.atomic():
        tracked = TrackedMessage.objects.select_for_update().filter(message_id=message_id).first()
        if tracked is not None and tracked.sender_id != user.pk:
            raise TrackingConflict(message_id)
        if tracked is None:
            tracked = TrackedMessage(message_id=message_id, sender=user)
        tracked.subject = (subject or "")[:300]
        tracked.mode = mode
        tracked.recipient_count = len(outcomes)
        tracked.links = unique_links
        tracked.issued_at = now
        tracked.expires_at = expires
        tracked.save()
        TrackedContact.objects.filter(tracked=tracked).delete()
        TrackedContact.objects.bulk_create(
            [TrackedContact(tracked=tracked, contact_id=c) for c in contact_ids]
        )
        record_event(
            "tracking.issued",
            actor=actor or user,
            obj=tracked,
            channel=channel,
            address=address,
            detail={
                "mode": mode,
                "recipients": len(outcomes),
                "refused": sum(1 for o in outcomes if not o.tracked),
                "links": len(unique_links),
                "contacts": contact_ids,
            },
        )
    issued, until = int(now.timestamp()), int(expires.timestamp())
    base = base_url(request)
    index = {url: i for i, url in enumerate(unique_links)}
    result.tracked, result.mode, result.tracked_message = True, mode, tracked
    result.expires_at = expires
    result.open_url = f"{base}/t/o/{tokens.make_open_token(tracked.pk, issued, until)}"
    result.links = [
        TrackedLink(
            url,
            f"{base}/t/c/{tokens.make_click_token(tracked.pk, issued, until, index[url], url)}",
        )
        for url in links
    ]
    return result


# --- the hot path ----------------------------------------------------------------------------


def _insert_sql(postgresql: bool) -> str:
    event = TrackingEvent._meta.db_table
    message = TrackedMessage._meta.db_table
    contact = TrackedContact._meta.db_table
    consent = ConsentRecord._meta.db_table
    # Typed parameters (server-side binding on PostgreSQL infers no type in a SELECT list).
    link, when = ("%s::smallint", "%s::timestamptz") if postgresql else ("%s", "%s")
    # On PostgreSQL the statement's own transaction commits without waiting for the WAL flush
    # (set_config(..., true) is SET LOCAL): a pixel answers in a fraction of the time, and a
    # database crash can lose the last fraction of a second of opens, never make them wrong.
    async_commit = ""
    if postgresql:
        async_commit = " CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) a"
    # Table names from the models' metadata; every value is a parameter.
    return (
        f"INSERT INTO {event} (tracked_id, kind, link, occurred_at, machine, machine_reason, "  # noqa: S608
        f"user_agent) SELECT t.id, %s, {link}, {when}, %s, %s, %s FROM {message} t{async_commit} "
        f"WHERE t.id = %s AND NOT EXISTS (SELECT 1 FROM {contact} tc WHERE tc.tracked_id = t.id "
        f"AND EXISTS (SELECT 1 FROM {consent} c WHERE c.contact_id = tc.contact_id "
        f"AND c.purpose IN ('processing', 'tracking') "
        f"AND c.effective_at > t.issued_at AND c.effective_at <= {when} "
        f"AND ((c.purpose = 'processing' AND (c.action = 'withdrawn' OR c.basis = 'none')) "
        f"OR (c.purpose = 'tracking' AND c.action = 'refused'))))"
    )


_INSERT: dict[bool, str] = {}
ONLY_WHEN_ASKED = 2**31 - 1


def record_tracking_event(
    claims: tokens.Claims, *, user_agent: str, machine_reason: str, now: datetime
) -> bool:
    """Write one open or click (one statement, its own transaction); False when the re-check
    refused it or the tracked message is gone. Database errors propagate (the view answers
    anyway)."""
    postgresql = connection.vendor == "postgresql"
    sql = _INSERT.get(postgresql) or _INSERT.setdefault(postgresql, _insert_sql(postgresql))
    kind = TrackingEvent.Kind.OPEN if claims.kind == tokens.OPEN else TrackingEvent.Kind.CLICK
    params = [
        kind.value,
        claims.link,
        now,
        bool(machine_reason),
        machine_reason,
        user_agent[:USER_AGENT_MAX],
        claims.tracked_id,
        now,
    ]
    if not postgresql:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1
    return _execute_prepared(sql, params) == 1


@cache
def _batch_sql() -> str:
    """The PostgreSQL statement that writes a batch: the events as parallel arrays (one
    statement, prepared once, whatever the batch size), each row kept only if its tracked
    message exists and no contact it was issued for had consent withdrawn (or a basis of none)
    or tracking refused between issuance and that event's own time. Rows keep their order."""
    event = TrackingEvent._meta.db_table
    message = TrackedMessage._meta.db_table
    contact = TrackedContact._meta.db_table
    consent = ConsentRecord._meta.db_table
    # Table names from the models' metadata; every value is a parameter.
    return (
        f"INSERT INTO {event} (tracked_id, kind, link, occurred_at, machine, machine_reason, "  # noqa: S608
        "user_agent) SELECT t.id, v.kind, v.link, v.occurred_at, v.machine, v.machine_reason, "
        "v.user_agent FROM unnest(%s::bigint[], %s::text[], %s::smallint[], %s::timestamptz[], "
        "%s::boolean[], %s::text[], %s::text[]) WITH ORDINALITY "
        "AS v(tracked_id, kind, link, occurred_at, machine, machine_reason, user_agent, n) "
        f"JOIN {message} t ON t.id = v.tracked_id "
        f"WHERE NOT EXISTS (SELECT 1 FROM {contact} tc WHERE tc.tracked_id = t.id "
        f"AND EXISTS (SELECT 1 FROM {consent} c WHERE c.contact_id = tc.contact_id "
        f"AND c.purpose IN ('processing', 'tracking') "
        f"AND c.effective_at > t.issued_at AND c.effective_at <= v.occurred_at "
        f"AND ((c.purpose = 'processing' AND (c.action = 'withdrawn' OR c.basis = 'none')) "
        f"OR (c.purpose = 'tracking' AND c.action = 'refused')))) "
        "ORDER BY v.n"
    )


def make_event(
    claims: tokens.Claims, *, user_agent: str, machine_reason: str, now: datetime
) -> Event:
    """The buffered form of one open or click (capture/tracking/buffer.py)."""
    kind = TrackingEvent.Kind.OPEN if claims.kind == tokens.OPEN else TrackingEvent.Kind.CLICK
    return (
        claims.tracked_id,
        kind.value,
        claims.link,
        now,
        bool(machine_reason),
        machine_reason,
        user_agent.replace("\x00", "")[:USER_AGENT_MAX],  # PostgreSQL text holds no NUL
    )


def _database_unavailable(exc: BaseException) -> bool:
    """Worth trying again later: the database was out of reach, not the batch at fault."""
    import psycopg
    from django.db import InterfaceError, OperationalError

    return isinstance(
        exc, OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError
    )


def record_tracking_events(events: Sequence[Event]) -> int:
    """Write buffered events: on PostgreSQL one prepared multi-row INSERT ... SELECT with the
    consent re-check per row (its own transaction, committed synchronously: one commit per
    batch costs the request nothing); elsewhere one single-row statement each, in one
    transaction. The number of rows the re-check let in. Database errors propagate (the buffer
    keeps the events for its next try)."""
    if not events:
        return 0
    if connection.vendor != "postgresql":
        sql = _INSERT.get(False) or _INSERT.setdefault(False, _insert_sql(False))
        written = 0
        with transaction.atomic(), connection.cursor() as cursor:
            for tracked_id, kind, link, when, machine, reason, agent in events:
                cursor.execute(sql, [kind, link, when, machine, reason, agent, tracked_id, when])
                written += cursor.rowcount
        return written
    columns = [list(column) for column in zip(*events, strict=True)]
    return _execute_prepared(_batch_sql(), columns)


def _execute_prepared(sql: str, params: list[Any]) -> int:
    """Run `sql` as a prepared statement of the (persistent) connection: planned once per
    connection instead of once per pixel (planning cost PostgreSQL ~0.35 ms of CPU a pixel,
    four times the execution). Django's cursor would bind on the client and plan every time,
    and ask the server "SELECT 1" first (CONN_HEALTH_CHECKS); here a connection that went stale
    is closed and the statement tried once more on a new one. Behind pgbouncer in transaction
    mode (before 1.21's prepared-statement support) set MAILWARDEN_TRACKING_PREPARED_STATEMENTS
    off."""
    import psycopg

    prepare = bool(getattr(settings, "MAILWARDEN_TRACKING_PREPARED_STATEMENTS", True))
    for attempt in (1, 2):
        try:
            connection.ensure_connection()
            raw = connection.connection
            if prepare and raw.prepare_threshold is None:
                # Django turns psycopg's prepared statements off (None: never, even when asked).
                # A threshold no query reaches prepares only what asks (prepare=True): this
                # statement; Django's own cursors bind on the client and never prepare.
                raw.prepare_threshold = ONLY_WHEN_ASKED
            with psycopg.Cursor(raw) as cursor:
                cursor.execute(sql, params, prepare=prepare)
                return cursor.rowcount
        except (psycopg.OperationalError, psycopg.InterfaceError):
            connection.close()
            if attempt == 2:
                raise
    return 0  # not reached


# --- reading ---------------------------------------------------------------------------------


def visible_tracked(user: User) -> QuerySet[TrackedMessage]:
    """Tracked messages `user` may see the tracking of: everything for admins and compliance;
    else what they sent, and messages whose captured mail they may see (capture/visibility.py)."""
    qs = TrackedMessage.objects.all()
    if sees_everything(user):
        return qs
    return qs.filter(Q(sender=user) | Q(message_id__in=visible_emails(user).values("message_id")))


def visible_events(user: User) -> QuerySet[TrackingEvent]:
    qs = TrackingEvent.objects.all()
    if sees_everything(user):
        return qs
    return qs.filter(tracked__in=visible_tracked(user).values("pk"))


@dataclass(frozen=True)
class LinkClicks:
    url: str
    clicks: int
    machine_clicks: int


@dataclass(frozen=True)
class TrackingSummary:
    """Opens and clicks of one tracked message (machine ones counted apart, included in the
    totals)."""

    tracked_id: int
    mode: str
    issued_at: datetime
    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    machine_clicks: int = 0
    first_open_at: datetime | None = None
    last_open_at: datetime | None = None
    last_click_at: datetime | None = None
    links: tuple[LinkClicks, ...] = ()

    @property
    def person_opens(self) -> int:
        return self.opens - self.machine_opens

    @property
    def person_clicks(self) -> int:
        return self.clicks - self.machine_clicks


def summaries(message_ids: Iterable[str]) -> dict[str, TrackingSummary]:
    """The tracking summary of each of these Message-IDs that was tracked (two queries)."""
    ids = sorted({m for m in message_ids if m})
    if not ids:
        return {}
    tracked = {
        t.pk: t
        for t in TrackedMessage.objects.filter(message_id__in=ids).only(
            "id", "message_id", "mode", "issued_at", "links"
        )
    }
    if not tracked:
        return {}
    counts: dict[int, dict[str, Any]] = {pk: {} for pk in tracked}
    rows = (
        TrackingEvent.objects.filter(tracked_id__in=list(tracked))
        .values("tracked_id", "kind", "machine", "link")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
        .order_by()
    )
    for row in rows:
        c = counts[row["tracked_id"]]
        kind, machine, n = row["kind"], row["machine"], row["n"]
        c[kind] = c.get(kind, 0) + n
        if machine:
            c[f"machine_{kind}"] = c.get(f"machine_{kind}", 0) + n
        first, last = c.get(f"first_{kind}"), c.get(f"last_{kind}")
        c[f"first_{kind}"] = row["first"] if first is None else min(first, row["first"])
        c[f"last_{kind}"] = row["last"] if last is None else max(last, row["last"])
        if kind == TrackingEvent.Kind.CLICK and row["link"] is not None:
            per = c.setdefault("links", {}).setdefault(row["link"], [0, 0])
            per[0] += n
            per[1] += n if machine else 0
    out = {}
    for pk, t in tracked.items():
        c = counts[pk]
        per_link = c.get("links", {})
        out[t.message_id] = TrackingSummary(
            tracked_id=pk,
            mode=t.mode,
            issued_at=t.issued_at,
            opens=c.get("open", 0),
            machine_opens=c.get("machine_open", 0),
            clicks=c.get("click", 0),
            machine_clicks=c.get("machine_click", 0),
            first_open_at=c.get("first_open"),
            last_open_at=c.get("last_open"),
            last_click_at=c.get("last_click"),
            links=tuple(
                LinkClicks(url, *per_link.get(i, (0, 0))) for i, url in enumerate(t.links or [])
            ),
        )
    return out


def summary(message_id: str) -> TrackingSummary | None:
    return summaries([message_id]).get(message_id)


# The process's buffer of events on their way to the database (capture/tracking/buffer.py).
EVENTS = EventBuffer(record_tracking_events, retryable=_database_unavailable)
