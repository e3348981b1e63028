"""What the SMTP listener decides before it stores a message (plain, synchronous functions;
the handler runs them in threads so the event loop never waits on the database).

- RCPT: `screen_recipient` resolves the capture address (550 5.1.1 when unknown/revoked) and
  applies the per-(address, sender) rate limit (451 4.7.1, recorded as an SmtpRateEvent).
- DATA: `screen_message` refuses our own mail and loops (550 5.7.1 / 550 5.4.6), checks the
  envelope sender and the From header against the owner's addresses (550 5.7.1) and reads a
  trusted Authentication-Results header (quarantine or 550 5.7.1).
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from email.parser import HeaderParser
from email.policy import compat32
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.utils import timezone

from capture.addresses import NotCached, resolve_capture_target, team_sender_allowed
from capture.models import SmtpRateEvent
from capture.smtp import LOOP_HEADER
from capture.smtp.authresults import auth_failure
from crm.addresses import InvalidAddress, normalize_address

log = logging.getLogger(__name__)

# RFC 5321 s. 6.3: a hop count is the simplest loop detection; 100 is the suggested floor.
MAX_RECEIVED_HEADERS = 100
HEADER_SCAN_LIMIT = 1024 * 1024

OK = None
UNKNOWN_ADDRESS = "550 5.1.1 No such capture address"
SENDER_REFUSED = "550 5.7.1 Sender is not allowed to log mail to this address"
LOOP_REFUSED = "550 5.7.1 Loop detected: Mailwarden does not capture its own mail"
HOPS_REFUSED = "550 5.4.6 Routing loop detected"
REPEAT_REFUSED = "550 5.4.6 Loop detected: this message keeps arriving"
RATE_LIMITED = "451 4.7.1 Too many messages from this sender, try again later"
AUTH_REFUSED = "550 5.7.1 Message failed authentication ({})"
STORE_DOWN = "451 4.3.0 Temporary failure, try again later"
TOO_BIG = "552 5.3.4 Message too big for system"


class NeedsDatabase(Exception):
    """Raised in fast mode (on the event loop) when a check would touch the database; the
    handler then runs the same check in a thread."""


class Reason:
    RATE = "rate_limit"
    LOOP = "loop"


@dataclass
class Target:
    """One accepted RCPT: the capture address it resolved to."""

    rcpt: str
    address_id: int
    user_id: int
    kind: str
    allowed_senders: frozenset[str] | None = None  # None: shared address, any active user


@dataclass
class HeaderInfo:
    """The few headers the listener looks at, read from the header block only."""

    from_addresses: list[str] = field(default_factory=list)
    message_id: str = ""
    loop_marker: bool = False
    received_count: int = 0
    auth_results: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    status: str | None  # None = store it
    options: dict[str, Any] = field(default_factory=dict)


def read_headers(data: bytes) -> HeaderInfo:
    """Parse the header block only (cheap; the full MIME parse happens in the pipeline)."""
    head = data[:HEADER_SCAN_LIMIT]
    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    block = head if end < 0 else head[: end + 2]
    # SMTPUTF8 mail carries raw UTF-8 in headers (RFC 6532).
    msg = HeaderParser(policy=compat32).parsestr(block.decode("utf-8", "replace"))
    froms = [str(v) for v in msg.get_all("From") or []]
    return HeaderInfo(
        from_addresses=[addr for _name, addr in email.utils.getaddresses(froms) if addr],
        message_id=str(msg.get("Message-ID") or "").strip()[:995],
        loop_marker=msg.get(LOOP_HEADER) is not None,
        received_count=len(msg.get_all("Received") or []),
        auth_results=[str(v) for v in msg.get_all("Authentication-Results") or []],
    )


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:24]


@lru_cache(maxsize=8192)
def _normalize(address: str) -> str:
    """normalize_address, cached: the same few senders repeat on every message."""
    return normalize_address(address)


def _norm(address: str) -> str:
    try:
        return _normalize(address)
    except InvalidAddress:
        return address.strip().lower()


class LocalCounters:
    """The window counters in this process's memory, for when Django's cache is local memory
    anyway (the embedded mode, a single listener): the same semantics without the cache
    API's per-operation key validation and pickling, which cost the listener ~0.1 ms a
    message (bench/smtp_accept.py). With Redis (`MAILWARDEN_CACHE_URL`) the cache is used,
    so several listener processes share the counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (expires at, count)

    def incr(self, key: str, timeout: float, now: float) -> int:
        with self._lock:
            expires, count = self._counts.get(key, (0.0, 0))
            if expires <= now:
                expires, count = now + timeout, 0
                if len(self._counts) > 100_000:  # drop what has expired
                    self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
            self._counts[key] = (expires, count + 1)
            return count + 1

    def get(self, key: str, now: float) -> int:
        expires, count = self._counts.get(key, (0.0, 0))
        return count if expires > now else 0

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


local_counters = LocalCounters()


def _cache_is_local() -> bool:
    return isinstance(caches["default"], LocMemCache)


def _hit_window(key: str, limit: int, window: int) -> tuple[bool, int]:
    """Count one hit in a sliding window; (over the limit?, estimated hits in the window).

    The sliding-window counter: two fixed buckets (this window, the previous one), the
    previous weighted by how much of it still overlaps the sliding window. O(1) in the
    cache, and `incr` is atomic on Redis, so several listener processes share the count.
    """
    now = time.time()
    bucket = int(now // window)
    current_key, previous_key = f"{key}:{bucket}", f"{key}:{bucket - 1}"
    if _cache_is_local():
        current = local_counters.incr(current_key, 2 * window, now)
        previous = local_counters.get(previous_key, now)
    else:
        try:
            current = cache.incr(current_key)
        except ValueError:  # the first hit of this bucket (or evicted): create it, atomically
            if cache.add(current_key, 1, timeout=2 * window):
                current = 1
            else:  # another process created it first
                current = cache.incr(current_key)
        previous = cache.get(previous_key) or 0
    overlap = 1.0 - (now - bucket * window) / window
    count = int(previous * overlap) + current
    return count > limit, count


def record_rate_event(address_id: int, sender: str, reason: str) -> None:
    """Count a refusal on the admin's list: one row per (address, sender, reason) and window."""
    window = settings.MAILWARDEN_SMTP_RATE_WINDOW_SECONDS
    since = timezone.now() - timezone.timedelta(seconds=window)
    sender = _norm(sender)[:320]
    with transaction.atomic():
        event = (
            SmtpRateEvent.objects.select_for_update()
            .filter(capture_address_id=address_id, sender=sender, reason=reason, updated__gte=since)
            .order_by("-id")
            .first()
        )
        if event is None:
            SmtpRateEvent.objects.create(
                capture_address_id=address_id, sender=sender, reason=reason
            )
        else:
            event.count += 1
            event.save(update_fields=["count", "updated"])


def screen_recipient(
    rcpt: str, mail_from: str, *, fast: bool = False
) -> tuple[str | None, Target | None]:
    """RCPT stage: (refusal status or None, target). Raises DatabaseError when the DB is down.

    fast=True never touches the database: it raises NeedsDatabase instead.
    """
    try:
        addr = resolve_capture_target(rcpt, cached_only=fast)
    except NotCached as e:
        raise NeedsDatabase from e
    if addr is None:
        return UNKNOWN_ADDRESS, None
    limit = settings.MAILWARDEN_SMTP_RATE_LIMIT
    window = settings.MAILWARDEN_SMTP_RATE_WINDOW_SECONDS
    if limit > 0:
        over, _count = _hit_window(
            f"mw:smtp:rate:{addr.id}:{_digest(_norm(mail_from))}", limit, window
        )
        if over:
            if fast:
                raise NeedsDatabase
            log.warning("SMTP rate limit hit for capture address #%s", addr.id)
            record_rate_event(addr.id, mail_from, Reason.RATE)
            return RATE_LIMITED, None
    return OK, Target(rcpt, addr.id, addr.user_id, addr.kind, addr.allowed_senders)


def _own_mail(mail_from: str, headers: HeaderInfo) -> bool:
    ours = _norm(settings.DEFAULT_FROM_EMAIL)  # cached: a settings override still applies
    return (
        headers.loop_marker
        or _norm(mail_from) == ours
        or any(_norm(a) == ours for a in headers.from_addresses)
    )


def _sender_ok(target: Target, senders: list[str]) -> bool:
    """HubSpot's rule: the owner's login e-mail, connected address or alias (see addresses)."""
    if target.allowed_senders is None:
        return team_sender_allowed(senders)
    try:
        return all(_normalize(a) in target.allowed_senders for a in senders)
    except InvalidAddress:
        return False


def _repeated(target: Target, headers: HeaderInfo) -> bool:
    limit = settings.MAILWARDEN_SMTP_LOOP_LIMIT
    if limit <= 0 or not headers.message_id:
        return False
    key = f"mw:smtp:msgid:{target.address_id}:{_digest(headers.message_id)}"
    over, _count = _hit_window(key, limit, settings.MAILWARDEN_SMTP_RATE_WINDOW_SECONDS)
    return over


def screen_message(
    targets: list[Target], mail_from: str, headers: HeaderInfo, *, fast: bool = False
) -> Verdict:
    """DATA stage: refuse loops and foreign senders, read trusted authentication results.

    One answer covers every recipient (SMTP has one DATA reply), so the message is refused
    when any recipient refuses it rather than silently dropped for some. fast=True never
    touches the database: it raises NeedsDatabase instead (before counting, where it can).
    """
    if fast and (
        _own_mail(mail_from, headers)
        or headers.received_count > MAX_RECEIVED_HEADERS
        or any(t.allowed_senders is None for t in targets)
    ):
        raise NeedsDatabase
    if _own_mail(mail_from, headers):
        for t in targets:
            record_rate_event(t.address_id, mail_from, Reason.LOOP)
        return Verdict(LOOP_REFUSED)
    if headers.received_count > MAX_RECEIVED_HEADERS:
        for t in targets:
            record_rate_event(t.address_id, mail_from, Reason.LOOP)
        return Verdict(HOPS_REFUSED)
    senders = [mail_from, *headers.from_addresses]
    if not mail_from or not headers.from_addresses:
        return Verdict(SENDER_REFUSED)
    if not all(_sender_ok(t, senders) for t in targets):
        return Verdict(SENDER_REFUSED)
    repeated = [t for t in targets if _repeated(t, headers)]
    if repeated:
        if fast:
            raise NeedsDatabase
        for t in repeated:
            record_rate_event(t.address_id, mail_from, Reason.LOOP)
        return Verdict(REPEAT_REFUSED)
    authserv = settings.MAILWARDEN_SMTP_TRUST_AUTH_RESULTS
    if authserv:
        failed = auth_failure(headers.auth_results, authserv)
        if failed:
            if settings.MAILWARDEN_SMTP_AUTH_FAIL_ACTION == "reject":
                return Verdict(AUTH_REFUSED.format(failed))
            return Verdict(OK, {"quarantine": failed})
    return Verdict(OK)
