"""Sending the outbox: in order per subscription, retried with backoff and jitter, logged.

`deliver_subscription(id)` holds the subscription's lock (a PostgreSQL advisory lock; a
process lock elsewhere), so one worker at a time sends its queue, head first: a head that
fails is retried after `base * 2^(n-1)` seconds (capped, ±20 % jitter so receivers coming back
are not hit by every sender at once; a 429/503 `Retry-After` is honoured up to the cap) and
the rows behind it wait, so a receiver sees each subscription's events in order. A head that
fails `MAX_ATTEMPTS` times is marked failed (replay it from the admin or the API) and the
queue moves on. Every attempt is logged (`WebhookAttempt`: response code, latency, error).
After `DISABLE_AFTER` consecutive failed attempts the subscription is disabled, with an
audit event and a notice in the admin; its pending rows wait, and are sent in order when an
admin enables it again.

Delivery is at least once: a worker that dies after the receiver answered but before its
commit sends that event again. Receivers drop repeats by `webhook-id` (docs/webhooks.md).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from requests.adapters import HTTPAdapter

from core.dispatch import send
from governance.audit import record_event
from governance.crypto import SecretDecryptError, decrypt_secret
from governance.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from governance.outbound.destinations import Destination, DestinationRefused, resolve_destination
from governance.outbound.outbox import DELIVER_TASK
from governance.outbound.signing import signed_headers

log = logging.getLogger(__name__)
Status = WebhookDelivery.Status
_LOCK_CLASS = 0x4D57_5748  # "MWWH": advisory lock class of the webhook queues
_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()
EXCERPT_BYTES = 500
USER_AGENT = "Mailwarden-Webhooks/1"


@dataclass(frozen=True)
class Config:
    timeout: float
    max_attempts: int
    retry_base: float
    retry_max: float
    disable_after: int
    keep_days: int
    ca_file: str


def config() -> Config:
    get = lambda name, default: getattr(settings, f"MAILWARDEN_WEBHOOKS_{name}", default)  # noqa: E731
    return Config(
        timeout=float(get("TIMEOUT_SECONDS", 10.0)),
        max_attempts=max(1, int(get("MAX_ATTEMPTS", 12))),
        retry_base=float(get("RETRY_BASE_SECONDS", 10.0)),
        retry_max=float(get("RETRY_MAX_SECONDS", 3600.0)),
        disable_after=max(1, int(get("DISABLE_AFTER", 30))),
        keep_days=int(get("KEEP_DAYS", 30)),
        ca_file=str(get("CA_FILE", "")),
    )


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt after `attempts` failed ones: exponential, capped,
    with ±20 % jitter; at least what the receiver asked for (Retry-After), up to the cap."""
    cfg = config()
    delay = min(cfg.retry_max, cfg.retry_base * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.8, 1.2)
    if retry_after:
        delay = max(delay, min(retry_after, cfg.retry_max))
    return delay


# --- one HTTP attempt --------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    response_code: int | None = None
    latency_ms: int | None = None
    error: str = ""
    excerpt: str = ""
    address: str = ""
    retry_after: float | None = None
    connect_failed: bool = False  # nothing was sent: another address may be tried


class _PinnedAdapter(HTTPAdapter):
    """Connects to the URL's IP address while TLS sends the name as SNI and checks the
    certificate against the name (urllib3's server_hostname / assert_hostname)."""

    def __init__(self, server_hostname: str) -> None:
        self._server_hostname = server_hostname
        super().__init__(max_retries=0, pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["server_hostname"] = self._server_hostname
        pool_kwargs["assert_hostname"] = self._server_hostname
        super().init_poolmanager(*args, **pool_kwargs)


def new_session(destination: Destination) -> requests.Session:
    """A session that connects only to the destination's resolved address."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: it would resolve the name itself
    session.mount("http://", _PinnedAdapter(destination.target.host))
    session.mount("https://", _PinnedAdapter(destination.target.host))
    return session


def post(
    session: requests.Session, destination: Destination, headers: dict[str, str], body: str
) -> AttemptResult:
    """POST the body to the resolved address; never follows a redirect, reads at most
    EXCERPT_BYTES of the answer."""
    cfg = config()
    headers = {**headers, "Host": destination.target.host_header, "User-Agent": USER_AGENT}
    started = time.perf_counter()
    try:
        response = session.post(
            destination.url,
            data=body.encode("utf-8"),
            headers=headers,
            timeout=(cfg.timeout, cfg.timeout),
            allow_redirects=False,
            stream=True,
            verify=cfg.ca_file or True,
        )
        latency = round((time.perf_counter() - started) * 1000)
        try:
            excerpt = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
        except Exception:  # the answer's body is only for the log
            excerpt = b""
        finally:
            response.close()
    except requests.RequestException as e:
        latency = round((time.perf_counter() - started) * 1000)
        connect_failed = isinstance(e, requests.ConnectTimeout) or (
            isinstance(e, requests.ConnectionError) and "NewConnectionError" in str(e)
        )
        return AttemptResult(
            False, None, latency, _describe(e), "", destination.address, None, connect_failed
        )
    code = response.status_code
    ok = 200 <= code < 300
    error = ""
    if 300 <= code < 400:
        error = "redirect not followed"
    elif not ok:
        error = f"HTTP {code}"
    return AttemptResult(
        ok,
        code,
        latency,
        error,
        excerpt.decode("utf-8", "replace"),
        destination.address,
        _retry_after(response) if code in (429, 503) else None,
    )


def _describe(error: Exception) -> str:
    kind = type(error).__name__
    text = str(error)
    return f"{kind}: {text}"[:500]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def secrets_of(subscription: WebhookSubscription, now: datetime) -> list[str]:
    found = [decrypt_secret(subscription.secret_encrypted)]
    if (
        subscription.previous_secret_encrypted
        and subscription.previous_secret_expires_at
        and subscription.previous_secret_expires_at > now
    ):
        found.append(decrypt_secret(subscription.previous_secret_encrypted))
    return found


class Sender:
    """One run's sending for a subscription: the URL resolved and checked once per run (the
    connection then goes to that address only; a run lasts seconds), the secrets decrypted
    once, one kept-alive connection. A refusal or a broken secret fails each attempt."""

    def __init__(self, subscription: WebhookSubscription) -> None:
        self.error = ""
        self.destinations: list[Destination] = []
        self.sessions: dict[int, requests.Session] = {}
        self.current = 0
        try:
            self.destinations = resolve_destination(subscription.url).all()
        except DestinationRefused as e:
            self.error = f"refused: {e}"[:500]
            return
        try:
            self.secrets = secrets_of(subscription, timezone.now())
        except SecretDecryptError as e:
            self.error = f"secret: {e}"[:500]

    def send(self, delivery: WebhookDelivery) -> AttemptResult:
        if self.error:
            address = self.destinations[0].address if self.destinations else ""
            return AttemptResult(False, error=self.error, address=address)
        headers = signed_headers(self.secrets, delivery.message_id, int(time.time()), delivery.body)
        while True:
            index = self.current
            destination = self.destinations[index]
            if index not in self.sessions:
                self.sessions[index] = new_session(destination)
            result = post(self.sessions[index], destination, headers, delivery.body)
            if not result.connect_failed or index + 1 >= len(self.destinations):
                return result
            self.current = index + 1  # e.g. ::1 first, the receiver on 127.0.0.1 only

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()


# --- the queue of a subscription ---------------------------------------------------------


@contextmanager
def subscription_lock(subscription_id: int) -> Iterator[bool]:
    """Whether this process now holds the right to send the subscription's queue."""
    if connection.vendor == "postgresql":
        key = [_LOCK_CLASS, subscription_id % 2**31]
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
            got = bool(cur.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        return
    with _process_locks_guard:
        lock = _process_locks.setdefault(subscription_id, threading.Lock())
    got = lock.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            lock.release()


QUEUE_CHUNK = 50


def deliver_subscription(
    subscription_id: int, *, now: datetime | None = None, limit: int = 500
) -> int:
    """Send the subscription's due deliveries head first; returns how many were delivered.
    `now` decides what is due (tests pass a later time instead of waiting)."""
    delivered = sent = 0
    drained = False
    with subscription_lock(subscription_id) as locked:
        if not locked:
            return 0  # another worker is sending this queue
        subscription = WebhookSubscription.objects.filter(pk=subscription_id, enabled=True).first()
        if subscription is None:
            return 0
        sender = Sender(subscription)
        run = _Run(subscription_id, subscription.consecutive_failures)
        try:
            while sent < limit and not run.stopped:
                chunk = list(
                    WebhookDelivery.objects.filter(
                        subscription_id=subscription_id, status=Status.PENDING
                    ).order_by("id")[:QUEUE_CHUNK]
                )
                if not chunk:
                    drained = True
                    break
                for head in chunk:
                    if head.next_attempt_at > (now or timezone.now()) or sent >= limit:
                        run.stopped = True
                        break
                    result = sender.send(head)
                    sent += 1
                    still_pending = run.record(head, result, now or timezone.now())
                    delivered += result.ok
                    if run.disabled or (not result.ok and still_pending):
                        run.stopped = True  # the head waits, and the rows behind it with it
                        break
                if (
                    not run.stopped
                    and not WebhookSubscription.objects.filter(
                        pk=subscription_id, enabled=True
                    ).exists()
                ):
                    break  # disabled meanwhile (admin)
        finally:
            sender.close()
            run.finish(now or timezone.now())
    if sent >= limit:
        send(DELIVER_TASK, subscription_id)  # more to do: give other queues a turn first
    elif drained and _due(subscription_id, now).exists():
        # Rows committed after the queue looked empty, whose own task found the lock taken:
        # one more turn now instead of at the sweeper's next look.
        send(DELIVER_TASK, subscription_id)
    return delivered


def _due(subscription_id: int, now: datetime | None):
    return WebhookDelivery.objects.filter(
        subscription_id=subscription_id,
        status=Status.PENDING,
        next_attempt_at__lte=now or timezone.now(),
    )


class _Run:
    """Settles attempts: one short transaction each (the attempt row and the delivery's
    state), the subscription's counters touched only when they change."""

    def __init__(self, subscription_id: int, failures: int) -> None:
        self.subscription_id = subscription_id
        self.failures = failures  # consecutive failed attempts, as stored
        self.last_success = None
        self.stopped = False
        self.disabled = False
        self.cfg = config()

    def record(self, delivery: WebhookDelivery, result: AttemptResult, now: datetime) -> bool:
        """Log the attempt and settle the delivery; returns whether it is still pending."""
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "response_code": result.response_code,
            "latency_ms": result.latency_ms,
            "last_error": result.error[:500],
        }
        if result.ok:
            values.update(status=Status.DELIVERED, delivered_at=now)
        elif attempts >= self.cfg.max_attempts:
            values["status"] = Status.FAILED
        else:
            delay = backoff_seconds(attempts, result.retry_after)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        subscriptions = WebhookSubscription.objects.filter(pk=self.subscription_id)
        with transaction.atomic():
            WebhookAttempt.objects.create(
                delivery_id=delivery.pk,
                created=now,
                number=attempts,
                destination=result.address,
                response_code=result.response_code,
                latency_ms=result.latency_ms,
                error=result.error[:500],
                response_excerpt=result.excerpt[:500],
            )
            WebhookDelivery.objects.filter(pk=delivery.pk).update(**values)
            if result.ok:
                self.last_success = now
                if self.failures:
                    subscriptions.update(consecutive_failures=0, last_success_at=now)
                    self.failures = 0
            else:
                subscriptions.update(
                    consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now
                )
                self.failures += 1
                if self.failures >= self.cfg.disable_after:
                    self.disabled = _disable_if_failing(
                        self.subscription_id, self.cfg.disable_after, now
                    )
        for key, value in values.items():
            setattr(delivery, key, value)
        if not result.ok:
            log.info(
                "webhook delivery %s to subscription %s failed (attempt %s): %s",
                delivery.pk,
                self.subscription_id,
                attempts,
                result.error,
            )
        return delivery.status == Status.PENDING

    def finish(self, now: datetime) -> None:
        if self.last_success is not None:
            WebhookSubscription.objects.filter(pk=self.subscription_id).update(
                last_success_at=self.last_success
            )


def _disable_if_failing(subscription_id: int, disable_after: int, now: datetime) -> bool:
    """Disable the subscription (audited) once its stored failure count reaches the limit."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
    if not subscription.enabled:
        return True
    if subscription.consecutive_failures < disable_after:
        return False
    subscription.enabled = False
    subscription.disabled_reason = WebhookSubscription.DisabledReason.FAILURES
    subscription.disabled_at = now
    subscription.save(update_fields=["enabled", "disabled_reason", "disabled_at", "updated"])
    record_event(
        "webhook.subscription.auto_disabled",
        actor="worker:webhooks",
        obj=subscription,
        channel="worker",
        detail={"consecutive_failures": subscription.consecutive_failures},
    )
    log.warning(
        "webhook subscription %s disabled after %s consecutive failed attempts",
        subscription_id,
        subscription.consecutive_failures,
    )
    return True


# --- the sweeper -------------------------------------------------------------------------


def due_subscriptions(now: datetime | None = None) -> list[int]:
    """Enabled subscriptions whose queue head is due (queue messages lost, retries due)."""
    return sorted(
        set(
            WebhookDelivery.objects.filter(
                status=Status.PENDING,
                next_attempt_at__lte=now or timezone.now(),
                subscription__enabled=True,
            ).values_list("subscription_id", flat=True)
        )
    )


def sweep_deliveries(now: datetime | None = None) -> dict[str, int]:
    """What beat runs every few seconds: queue every subscription with due deliveries, and
    drop delivered and failed rows past MAILWARDEN_WEBHOOKS_KEEP_DAYS from the log."""
    due = due_subscriptions(now)
    for subscription_id in due:
        send(DELIVER_TASK, subscription_id)
    pruned = prune_delivery_log(now)
    return {"queued": len(due), "pruned": pruned}


def deliver_due(now: datetime | None = None) -> int:
    """Send every due delivery in this process (`manage.py deliver_webhooks`, tests)."""
    return sum(deliver_subscription(s, now=now) for s in due_subscriptions(now))


def prune_delivery_log(now: datetime | None = None) -> int:
    """Drop delivered and failed rows older than KEEP_DAYS, and pending rows that old of a
    disabled subscription (nobody enabled it again in that time)."""
    keep_days = config().keep_days
    if keep_days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    old = WebhookDelivery.objects.filter(created__lt=cutoff).filter(
        Q(status__in=[Status.DELIVERED, Status.FAILED]) | Q(subscription__enabled=False)
    )
    _, per_model = old.delete()
    return per_model.get(WebhookDelivery._meta.label, 0)
