"""Subscriptions and replays: every write goes through here, validated and audited, whether
it comes from the API (governance/api/webhooks.py) or the admin (governance/outbound/admin.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.audit import record_event
from governance.crypto import encrypt_secret
from governance.models import WebhookDelivery, WebhookSubscription
from governance.outbound.destinations import DestinationRefused, check_url
from governance.outbound.events import EVENT_TYPE_NAMES
from governance.outbound.outbox import queue_delivery
from governance.outbound.signing import generate_secret

PREVIOUS_SECRET_GRACE = timedelta(hours=24)
EDITABLE = ("name", "url", "event_types", "enabled")


class WebhookRejected(Exception):
    """Bad input: `errors` maps field names to messages (the API's 400, the form's errors)."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = dict(errors)


def clean_event_types(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise WebhookRejected({"event_types": ["Choose at least one event type."]})
    unknown = sorted({str(v) for v in value} - EVENT_TYPE_NAMES)
    if unknown:
        raise WebhookRejected({"event_types": [f"Unknown event types: {', '.join(unknown)}."]})
    return sorted(set(value))


def clean_url(url: str) -> str:
    try:
        check_url(url)
    except DestinationRefused as e:
        raise WebhookRejected({"url": [str(e)]}) from None
    return url.strip()


def _audit(action: str, subscription: WebhookSubscription, audit: Mapping[str, Any], **detail):
    record_event(
        action,
        actor=audit.get("actor"),
        obj=subscription,
        channel=audit.get("channel", ""),
        address=audit.get("address", ""),
        detail=detail,
    )


def create_subscription(
    *,
    name: str,
    url: str,
    event_types: Sequence[str],
    enabled: bool = True,
    created_by: Any = None,
    **audit: Any,
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret (returned once; stored encrypted)."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {"name": (name or "").strip()[:120]}
    for field, clean, value in (
        ("url", clean_url, url),
        ("event_types", clean_event_types, event_types),
    ):
        try:
            values[field] = clean(value)
        except WebhookRejected as e:
            errors.update(e.errors)
    if errors:
        raise WebhookRejected(errors)
    secret = generate_secret()
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(
            **values,
            enabled=enabled,
            secret_encrypted=encrypt_secret(secret),
            created_by=created_by if getattr(created_by, "pk", None) else None,
        )
        _audit(
            "webhook.subscription.created",
            subscription,
            audit,
            event_types=values["event_types"],
            enabled=enabled,
        )
    return subscription, secret


def update_subscription(
    subscription: WebhookSubscription, changes: Mapping[str, Any], **audit: Any
) -> WebhookSubscription:
    """Change name, URL, event types or enabled (enabling again clears the failure count)."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for field, value in changes.items():
        if field not in EDITABLE:
            errors[field] = ["This field cannot be changed."]
            continue
        try:
            if field == "url":
                value = clean_url(value) if value != subscription.url else value
            elif field == "event_types":
                value = clean_event_types(value)
            elif field == "name":
                value = (value or "").strip()[:120]
            else:
                value = bool(value)
        except WebhookRejected as e:
            errors.update(e.errors)
            continue
        if getattr(subscription, field) != value:
            values[field] = value
    if errors:
        raise WebhookRejected(errors)
    if not values:
        return subscription
    with transaction.atomic():
        locked = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        fields = list(values)
        for field, value in values.items():
            setattr(locked, field, value)
        if values.get("enabled") is True:
            locked.consecutive_failures = 0
            locked.disabled_reason = ""
            locked.disabled_at = None
            fields += ["consecutive_failures", "disabled_reason", "disabled_at"]
        elif values.get("enabled") is False:
            locked.disabled_reason = WebhookSubscription.DisabledReason.MANUAL
            locked.disabled_at = timezone.now()
            fields += ["disabled_reason", "disabled_at"]
        locked.save(update_fields=[*fields, "updated"])
        _audit("webhook.subscription.updated", locked, audit, fields=sorted(values))
        if values.get("enabled") is True:
            # What waited while it was disabled goes out now, in order.
            transaction.on_commit(lambda: queue_delivery([locked.pk]), robust=True)
    for field in (*fields, "updated"):
        setattr(subscription, field, getattr(locked, field))
    return subscription


def set_enabled(subscriptions: Iterable[WebhookSubscription], enabled: bool, **audit: Any) -> int:
    changed = 0
    for subscription in subscriptions:
        if subscription.enabled != enabled:
            update_subscription(subscription, {"enabled": enabled}, **audit)
            changed += 1
    return changed


def rotate_secret(subscription: WebhookSubscription, **audit: Any) -> str:
    """A new secret (returned once); the old one keeps signing for PREVIOUS_SECRET_GRACE."""
    secret = generate_secret()
    with transaction.atomic():
        locked = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = timezone.now() + PREVIOUS_SECRET_GRACE
        locked.secret_encrypted = encrypt_secret(secret)
        locked.save(
            update_fields=[
                "previous_secret_encrypted",
                "previous_secret_expires_at",
                "secret_encrypted",
                "updated",
            ]
        )
        _audit("webhook.subscription.secret_rotated", locked, audit)
    subscription.refresh_from_db()
    return secret


def delete_subscription(subscription: WebhookSubscription, **audit: Any) -> None:
    """Delete a subscription with its queue and delivery log (audited)."""
    with transaction.atomic():
        pending = subscription.deliveries.filter(status=WebhookDelivery.Status.PENDING).count()
        _audit("webhook.subscription.deleted", subscription, audit, pending_dropped=pending)
        subscription.delete()


def replay_delivery(delivery: WebhookDelivery, **audit: Any) -> WebhookDelivery:
    """Send a delivery again: a new row at the end of its subscription's queue, with the same
    webhook-id and body (a receiver that already has the event can drop it)."""
    with transaction.atomic():
        replay = WebhookDelivery.objects.create(
            subscription_id=delivery.subscription_id,
            audit_event_id=delivery.audit_event_id,
            message_id=delivery.message_id,
            event_type=delivery.event_type,
            body=delivery.body,
            replay_of=delivery,
        )
        record_event(
            "webhook.delivery.replayed",
            actor=audit.get("actor"),
            obj=replay,
            channel=audit.get("channel", ""),
            address=audit.get("address", ""),
            detail={"replay_of": delivery.pk, "subscription": delivery.subscription_id},
        )
        transaction.on_commit(lambda: queue_delivery([delivery.subscription_id]), robust=True)
    return replay
