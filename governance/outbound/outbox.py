"""The outbox: webhook deliveries written in the transaction of the change they tell of.

`write_outbox` is registered with governance.audit (register_event_listener) and runs inside
`record_event` / `record_events`, so a delivery row commits or rolls back with its change and
its audit event: none is lost when Redis or a worker dies between the commit and the queue.
After the commit, the subscriptions that got rows are queued for delivery
(`transaction.on_commit`); rows whose queue message was lost are picked up by the sweeper
(governance.outbound.delivery.sweep_deliveries, every few seconds).

One row per event *and subscription* (fan-out at write time, not at delivery): which
subscriptions hear of an event is decided once, by the subscriptions in force when the change
committed; each subscription's queue is then its own rows in id order (one partial index),
delivered, retried, failed and replayed on its own without holding up the others.

Cost on the capture path (bench/webhooks.py): a batch of mail calls this twice (its audit
events, the contacts it created); with no mapped action nothing is read; otherwise one query
of the enabled subscriptions (a handful of rows) and, only when one wants the event type, one
multi-row INSERT for the whole batch. The subscription set is read per call, not cached per
process: a cache could not see a subscription created or disabled by another process without
a shared store, and one indexed read of a tiny table per batch of 100 messages costs less
than the invalidation would.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.db.bulk import bulk_insert, new_row
from core.dispatch import send
from governance.models import AuditEvent, WebhookDelivery, WebhookSubscription
from governance.outbound.events import event_type_of, message_id_of, render_body

DELIVER_TASK = "governance.deliver_webhooks"


def listening_subscriptions() -> list[tuple[int, frozenset[str]]]:
    """(id, event types) of every subscription that collects events: the enabled ones, and
    those disabled after repeated failures (their events wait for the receiver to be back;
    an admin's disable stops collecting)."""
    listening = Q(enabled=True) | Q(disabled_reason=WebhookSubscription.DisabledReason.FAILURES)
    return [
        (pk, frozenset(types or ()))
        for pk, types in WebhookSubscription.objects.filter(listening).values_list(
            "pk", "event_types"
        )
    ]


def write_outbox(events: Sequence[AuditEvent]) -> None:
    """The audit listener: outbox rows for the events some listening subscription wants."""
    matched = [(e, s) for e in events if (s := event_type_of(e)) is not None]
    if not matched:
        return
    subscriptions = listening_subscriptions()
    if not subscriptions:
        return
    now = timezone.now()
    rows: list[WebhookDelivery] = []
    for event, source in matched:
        body = None
        for sub_id, types in subscriptions:
            if source.event_type not in types:
                continue
            if body is None:
                body = render_body(event, source)
            rows.append(
                new_row(
                    WebhookDelivery,
                    subscription_id=sub_id,
                    audit_event_id=event.pk,
                    message_id=message_id_of(event),
                    event_type=source.event_type,
                    body=body,
                    status=WebhookDelivery.Status.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created=now,
                )
            )
    if not rows:
        return
    bulk_insert(WebhookDelivery, rows)
    touched = sorted({row.subscription_id for row in rows})
    # robust: a broker that is down must not fail the committed change (the sweeper catches up).
    transaction.on_commit(lambda: queue_delivery(touched), robust=True)


def queue_delivery(subscription_ids: Sequence[int]) -> None:
    """Queue one delivery task per subscription (after the commit that wrote their rows)."""
    for sub_id in subscription_ids:
        send(DELIVER_TASK, sub_id)
