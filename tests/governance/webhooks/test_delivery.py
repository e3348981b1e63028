"""Delivery to a real HTTP receiver on loopback: signatures, order, the receiver down for a
while and back, retries with backoff, giving up, replay and auto-disable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.audit import record_event
from governance.models import AuditEvent, WebhookDelivery, WebhookSubscription
from governance.outbound.delivery import deliver_due, deliver_subscription
from governance.outbound.subscriptions import replay_delivery, rotate_secret, update_subscription
from tests.governance.webhooks.conftest import subscribe, verify_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_private")]
Status = WebhookDelivery.Status


def contact_created(n: int) -> AuditEvent:
    return record_event(
        "crm.contact.created", object_type="crm.contact", object_id=n, detail={"source": "api"}
    )


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def test_each_delivery_is_signed_standard_webhooks_style_and_verifies_independently(receiver):
    sub, secret = subscribe(receiver.url(), "contact.created")
    event = contact_created(41)
    assert deliver_subscription(sub.pk) == 1
    (got,) = receiver.received
    assert got.path == "/hook"
    assert got.headers["webhook-id"] == f"evt_{event.pk}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert got.headers["webhook-signature"].startswith("v1,")
    assert verify_signature(secret, got.headers, got.body)
    assert not verify_signature(secret, got.headers, got.body + b" ")  # the body is signed
    forged = {**got.headers, "webhook-id": "evt_0"}
    assert not verify_signature(secret, forged, got.body)  # so is the id
    assert got.payload == {
        "type": "contact.created",
        "timestamp": got.payload["timestamp"],
        "data": {"id": 41, "source": "api"},
    }
    assert got.payload["timestamp"].startswith(f"{event.created:%Y-%m-%dT%H:%M}")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.DELIVERED and delivery.response_code == 204
    assert delivery.latency_ms is not None
    attempt = delivery.attempt_log.get()
    assert (attempt.number, attempt.response_code, attempt.destination) == (1, 204, "127.0.0.1")


def test_after_a_rotation_both_secrets_sign_until_the_old_one_expires(receiver):
    sub, old = subscribe(receiver.url(), "contact.created")
    new = rotate_secret(sub, actor="test", channel="cli")
    contact_created(1)
    deliver_subscription(sub.pk)
    got = receiver.received[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verify_signature(new, got.headers, got.body)
    assert verify_signature(old, got.headers, got.body)
    WebhookSubscription.objects.filter(pk=sub.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    contact_created(2)
    deliver_subscription(sub.pk)
    got = receiver.received[1]
    assert verify_signature(new, got.headers, got.body)
    assert not verify_signature(old, got.headers, got.body)


def test_receiver_down_for_a_while_then_back_gets_every_event_in_order(receiver, settings):
    settings.MAILWARDEN_WEBHOOKS_DISABLE_AFTER = 100
    first, secret_a = subscribe(receiver.url("/a"), "contact.created", name="a")
    second, secret_b = subscribe(receiver.url("/b"), "contact.created", name="b")
    receiver.stop()  # down: connection refused
    events = [contact_created(n) for n in range(1, 8)]
    assert deliver_due() == 0
    assert deliver_due(now=later(60)) == 0  # a retry while still down
    assert deliver_due(now=later(600)) == 0
    heads = WebhookDelivery.objects.filter(attempts__gt=0)
    # Only each queue's head was tried (the rest wait behind it), and it was tried again.
    assert {(d.subscription_id, d.message_id) for d in heads} == {
        (first.pk, f"evt_{events[0].pk}"),
        (second.pk, f"evt_{events[0].pk}"),
    }
    assert all(d.attempts == 3 and d.status == Status.PENDING for d in heads)
    assert all("Connection" in d.last_error or "refused" in d.last_error for d in heads)

    receiver.start()  # back, on the same port
    assert deliver_due(now=later(7200)) == 14
    assert WebhookDelivery.objects.exclude(status=Status.DELIVERED).count() == 0
    for path, secret in (("/a", secret_a), ("/b", secret_b)):
        got = [r for r in receiver.received if r.path == path]
        assert [r.headers["webhook-id"] for r in got] == [f"evt_{e.pk}" for e in events]
        assert [r.payload["data"]["id"] for r in got] == list(range(1, 8))
        assert all(verify_signature(secret, r.headers, r.body) for r in got)
    assert WebhookSubscription.objects.get(pk=first.pk).consecutive_failures == 0


def test_a_failed_head_is_retried_with_growing_jittered_delays(receiver, settings):
    settings.MAILWARDEN_WEBHOOKS_RETRY_BASE_SECONDS = 10
    settings.MAILWARDEN_WEBHOOKS_RETRY_MAX_SECONDS = 3600
    settings.MAILWARDEN_WEBHOOKS_DISABLE_AFTER = 100
    receiver.status = 500
    sub, _ = subscribe(receiver.url(), "contact.created")
    contact_created(1)
    delays = []
    now = timezone.now()
    for _ in range(5):
        deliver_subscription(sub.pk, now=now)
        d = WebhookDelivery.objects.get()
        delays.append((d.next_attempt_at - now).total_seconds())
        now = d.next_attempt_at
    assert d.attempts == 5 and d.response_code == 500 and d.last_error == "HTTP 500"
    for n, delay in enumerate(delays):
        assert 10 * 2**n * 0.8 <= delay <= 10 * 2**n * 1.2
    assert len(receiver.received) == 5  # one request per attempt, none in between


def test_a_head_that_exhausts_its_attempts_fails_and_the_queue_moves_on(receiver, settings):
    settings.MAILWARDEN_WEBHOOKS_MAX_ATTEMPTS = 2
    settings.MAILWARDEN_WEBHOOKS_DISABLE_AFTER = 100
    receiver.status = 400
    sub, _ = subscribe(receiver.url(), "contact.created")
    one, two = contact_created(1), contact_created(2)
    deliver_subscription(sub.pk)
    deliver_subscription(sub.pk, now=later(3600))  # the head's 2nd attempt: gives up
    first = WebhookDelivery.objects.get(message_id=f"evt_{one.pk}")
    assert first.status == Status.FAILED and first.attempts == 2
    # ... and the same run went on to the next one.
    assert WebhookDelivery.objects.get(message_id=f"evt_{two.pk}").attempts == 1
    receiver.status = 200
    deliver_subscription(sub.pk, now=later(7200))
    assert WebhookDelivery.objects.get(message_id=f"evt_{two.pk}").status == Status.DELIVERED


def test_replay_sends_a_delivery_again_with_the_same_id_and_body(receiver):
    sub, secret = subscribe(receiver.url(), "contact.created")
    contact_created(5)
    deliver_subscription(sub.pk)
    original = WebhookDelivery.objects.get()
    replay = replay_delivery(original, actor="test", channel="cli")
    assert replay.status == Status.PENDING and replay.replay_of == original
    deliver_subscription(sub.pk)
    assert len(receiver.received) == 2
    a, b = receiver.received
    assert a.body == b.body and a.headers["webhook-id"] == b.headers["webhook-id"]
    assert verify_signature(secret, b.headers, b.body)
    assert AuditEvent.objects.filter(action="webhook.delivery.replayed").count() == 1


def test_repeated_failure_disables_the_subscription_audited_and_events_wait(receiver, settings):
    settings.MAILWARDEN_WEBHOOKS_DISABLE_AFTER = 3
    receiver.status = 503
    sub, _ = subscribe(receiver.url(), "contact.created")
    contact_created(1)
    contact_created(2)
    for minutes in (0, 10, 60, 600):
        deliver_due(now=later(minutes * 60 + 1))
    sub.refresh_from_db()
    assert not sub.enabled
    assert sub.disabled_reason == WebhookSubscription.DisabledReason.FAILURES
    assert sub.consecutive_failures == 3
    assert len(receiver.received) == 3  # nothing is sent once disabled
    event = AuditEvent.objects.get(action="webhook.subscription.auto_disabled")
    assert event.object_id == str(sub.pk) and event.detail == {"consecutive_failures": 3}
    # New events still queue for it; enabling again sends them all, in order.
    contact_created(3)
    assert WebhookDelivery.objects.filter(status=Status.PENDING).count() == 3
    receiver.status = 200
    update_subscription(sub, {"enabled": True}, actor="test", channel="cli")
    sub.refresh_from_db()
    assert sub.consecutive_failures == 0 and sub.disabled_reason == ""
    deliver_due(now=later(7200))
    assert [r.payload["data"]["id"] for r in receiver.received[3:]] == [1, 2, 3]


def test_a_redirect_is_not_followed(receiver):
    receiver.status = 302
    sub, _ = subscribe(receiver.url(), "contact.created")
    contact_created(1)
    deliver_subscription(sub.pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.response_code == 302 and delivery.last_error == "redirect not followed"
