"""The admin pages: create shows the secret once, the delivery log with attempts, replay,
and the notice while a subscription is disabled after repeated failures."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import User
from governance.audit import record_event
from governance.models import AuditEvent, WebhookDelivery, WebhookSubscription
from governance.outbound.delivery import deliver_due
from tests.factories import make_user
from tests.governance.webhooks.conftest import subscribe, verify_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_private")]


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(make_user(role=User.Role.ADMIN, is_staff=True))
    return client


def test_adding_a_subscription_shows_its_secret_once(admin_client, receiver):
    response = admin_client.post(
        reverse("admin:governance_webhooksubscription_add"),
        {"name": "CRM", "url": receiver.url(), "event_types": ["contact.created"], "enabled": "on"},
    )
    assert response.status_code == 200
    secret = re.search(r'value="(whsec_[^"]+)"', response.content.decode())[1]
    sub = WebhookSubscription.objects.get()
    assert AuditEvent.objects.get(action="webhook.subscription.created").channel == "admin"
    page = admin_client.get(reverse("admin:governance_webhooksubscription_change", args=[sub.pk]))
    assert secret not in page.content.decode()
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    deliver_due()
    assert verify_signature(secret, receiver.received[0].headers, receiver.received[0].body)


def test_a_private_url_is_a_form_error_when_not_allowed(admin_client, settings):
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = False
    response = admin_client.post(
        reverse("admin:governance_webhooksubscription_add"),
        {"name": "x", "url": "http://10.0.0.1/", "event_types": ["contact.created"]},
    )
    assert response.status_code == 200 and "a private address" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_the_delivery_log_shows_codes_and_latency_and_replays(admin_client, receiver):
    subscribe(receiver.url(), "contact.created")
    receiver.status = 500
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    listing = admin_client.get(reverse("admin:governance_webhookdelivery_changelist"))
    assert listing.status_code == 200 and "contact.created" in listing.content.decode()
    page = admin_client.get(
        reverse("admin:governance_webhookdelivery_change", args=[delivery.pk])
    ).content.decode()
    assert "500" in page and "HTTP 500" in page
    response = admin_client.post(
        reverse("admin:governance_webhookdelivery_changelist"),
        {"action": "replay", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert "Queued 1 replay" in response.content.decode()
    assert WebhookDelivery.objects.filter(replay_of=delivery).count() == 1


def test_an_auto_disabled_subscription_is_announced_until_enabled(admin_client, receiver, settings):
    settings.MAILWARDEN_WEBHOOKS_DISABLE_AFTER = 1
    sub, _ = subscribe(receiver.url(), "contact.created", name="Pipedrive sync")
    receiver.status = 500
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    deliver_due()
    page = admin_client.get(reverse("admin:governance_webhooksubscription_changelist"))
    assert "Pipedrive sync</a> was disabled" in page.content.decode()
    response = admin_client.post(
        reverse("admin:governance_webhooksubscription_changelist"),
        {"action": "enable", "_selected_action": [sub.pk]},
        follow=True,
    )
    assert "Enabled 1 subscription" in response.content.decode()
    page = admin_client.get(reverse("admin:governance_webhooksubscription_changelist"))
    assert "was disabled" not in page.content.decode()


def test_non_admin_staff_do_not_see_webhooks(receiver):
    client = Client()
    client.force_login(make_user(role=User.Role.COMPLIANCE, is_staff=True))
    assert client.get(reverse("admin:governance_webhooksubscription_changelist")).status_code == 403


def test_rotating_the_secret_in_admin_shows_the_new_one_once(admin_client, receiver):
    sub, old = subscribe(receiver.url(), "contact.created")
    response = admin_client.post(
        reverse("admin:governance_webhooksubscription_changelist"),
        {"action": "rotate", "_selected_action": [sub.pk]},
    )
    new = re.search(r'value="(whsec_[^"]+)"', response.content.decode())[1]
    assert new != old
    record_event("crm.contact.created", object_type="crm.contact", object_id=1)
    deliver_due()
    got = receiver.received[0]
    assert verify_signature(new, got.headers, got.body)
    assert verify_signature(old, got.headers, got.body)  # for 24 hours
    assert AuditEvent.objects.filter(action="webhook.subscription.secret_rotated").count() == 1
