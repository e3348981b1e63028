"""/api/v1/webhooks/ and /api/v1/webhook-deliveries/: the secret answered once, validation,
rotation, who may use it, the delivery log and replay."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken, User
from governance.audit import record_event
from governance.models import AuditEvent, WebhookDelivery, WebhookSubscription
from governance.outbound.delivery import deliver_due
from tests.factories import make_user
from tests.governance.webhooks.conftest import verify_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_private")]


@pytest.fixture
def api() -> APIClient:
    _, key = ApiToken.issue(user=make_user(), name="integration", scopes=["governance:admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def create(api, receiver, **extra):
    body = {"name": "CRM", "url": receiver.url(), "event_types": ["contact.created"], **extra}
    return api.post("/api/v1/webhooks/", body, format="json")


def test_create_answers_the_secret_once_and_reads_never_show_it(api, receiver):
    response = create(api, receiver)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["enabled"] is True
    sub = WebhookSubscription.objects.get(pk=body["id"])
    assert body["secret"] not in sub.secret_encrypted  # stored encrypted
    shown = api.get(f"/api/v1/webhooks/{sub.pk}/").json()
    assert "secret" not in shown and "secret_encrypted" not in shown
    assert "secret" not in api.get("/api/v1/webhooks/").json()["results"][0]
    event = AuditEvent.objects.get(action="webhook.subscription.created")
    assert event.actor_type == "token" and event.channel == "api"
    assert body["secret"] not in str(event.detail)
    # The secret signs what is delivered.
    record_event("crm.contact.created", object_type="crm.contact", object_id=3)
    deliver_due()
    got = receiver.received[0]
    assert verify_signature(body["secret"], got.headers, got.body)


def test_bad_input_is_a_400_naming_the_fields(api, receiver):
    response = create(api, receiver, event_types=["contact.created", "no.such"], url="ftp://x/")
    assert response.status_code == 400
    assert set(response.json()) == {"event_types", "url"}
    assert create(api, receiver, event_types=[]).status_code == 400
    assert create(api, receiver, secret="mine").status_code == 400  # unknown field
    assert not WebhookSubscription.objects.exists()


def test_update_and_rotate_secret(api, receiver):
    sub_id = create(api, receiver).json()["id"]
    response = api.patch(
        f"/api/v1/webhooks/{sub_id}/",
        {"event_types": ["contact.created", "consent.changed"], "enabled": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["disabled_reason"] == "manual"
    bad = api.patch(
        f"/api/v1/webhooks/{sub_id}/", {"url": "http://169.254.169.254/"}, format="json"
    )
    assert bad.status_code == 200  # allowed here: the operator allows private receivers
    rotated = api.post(f"/api/v1/webhooks/{sub_id}/rotate-secret/")
    assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
    assert WebhookSubscription.objects.get(pk=sub_id).previous_secret_expires_at is not None


def test_private_urls_are_refused_on_update_when_not_allowed(api, receiver, settings):
    sub_id = create(api, receiver).json()["id"]
    settings.MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = False
    response = api.patch(
        f"/api/v1/webhooks/{sub_id}/", {"url": "http://169.254.169.254/x"}, format="json"
    )
    assert response.status_code == 400 and "link-local" in response.json()["url"][0]


def test_delivery_log_and_replay(api, receiver):
    create(api, receiver)
    receiver.status = 500
    record_event("crm.contact.created", object_type="crm.contact", object_id=3)
    deliver_due()
    listed = api.get("/api/v1/webhook-deliveries/").json()["results"]
    assert len(listed) == 1
    row = listed[0]
    assert (row["status"], row["attempts"], row["response_code"]) == ("pending", 1, 500)
    assert row["payload"]["type"] == "contact.created" and row["latency_ms"] is not None
    detail = api.get(f"/api/v1/webhook-deliveries/{row['id']}/").json()
    assert detail["attempt_log"][0]["response_code"] == 500
    replay = api.post(f"/api/v1/webhook-deliveries/{row['id']}/replay/")
    assert replay.status_code == 202
    assert replay.json()["replay_of"] == row["id"]
    assert WebhookDelivery.objects.count() == 2


def test_only_admins_and_governance_tokens_may_use_it(receiver):
    for role, allowed in ((User.Role.COMPLIANCE, False), (User.Role.ADMIN, True)):
        client = APIClient()
        client.force_login(make_user(role=role, is_staff=True))
        assert (client.get("/api/v1/webhooks/").status_code == 200) is allowed
    _, key = ApiToken.issue(user=make_user(), name="crm", scopes=["crm:read", "crm:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/webhooks/").status_code == 403
    assert client.get("/api/v1/webhook-deliveries/").status_code == 403


def test_delete_drops_the_queue_and_is_audited(api, receiver):
    sub_id = create(api, receiver).json()["id"]
    record_event("crm.contact.created", object_type="crm.contact", object_id=3)
    assert api.delete(f"/api/v1/webhooks/{sub_id}/").status_code == 204
    assert not WebhookDelivery.objects.exists()
    event = AuditEvent.objects.get(action="webhook.subscription.deleted")
    assert event.detail == {"pending_dropped": 1}
