"""Celery tasks of the outbound webhooks: thin doors over governance/outbound/delivery.py."""

from __future__ import annotations

from celery import shared_task

from governance.outbound.delivery import deliver_subscription, sweep_deliveries
from governance.outbound.outbox import DELIVER_TASK

SWEEP_TASK = "governance.sweep_webhooks"


@shared_task(name=DELIVER_TASK, ignore_result=True)
def deliver_webhooks(subscription_id: int) -> int:
    """Send a subscription's due deliveries in order (queued after each commit that adds some)."""
    return deliver_subscription(int(subscription_id))


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep_webhooks() -> dict[str, int]:
    """Queue subscriptions with due deliveries (retries, lost queue messages); prune the log."""
    return sweep_deliveries()
