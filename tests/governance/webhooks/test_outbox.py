"""The outbox: rows written by the audit listener in the transaction of the change, only for
subscriptions that want the event type, in bulk for a batch of captured mail; none lost
when the broker is down at commit."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from capture.intake import RawSpec, store_raw_message
from capture.links import Target, link_thread
from capture.pipeline import process_raw_message
from config.celery import app
from crm.models import User
from governance.audit import build_event, record_event, record_events
from governance.consent import record_consent
from governance.models import WebhookDelivery
from governance.outbound.delivery import deliver_due
from governance.outbound.subscriptions import update_subscription
from tests.factories import make_contact, make_user, set_org_settings
from tests.governance.webhooks.conftest import subscribe, verify_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_private")]


def bodies() -> list[dict]:
    return [json.loads(d.body) for d in WebhookDelivery.objects.order_by("id")]


def test_a_rolled_back_change_leaves_no_delivery(receiver):
    subscribe(receiver.url(), "contact.created")
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event("crm.contact.created", object_type="crm.contact", object_id=1)
        assert WebhookDelivery.objects.count() == 1  # written with the event...
        raise RuntimeError("the change fails")
    assert WebhookDelivery.objects.count() == 0  # ...and gone with it


def test_only_listening_subscriptions_that_want_the_type_get_a_row(receiver):
    contacts, _ = subscribe(receiver.url("/c"), "contact.created", name="contacts")
    both, _ = subscribe(receiver.url("/b"), "contact.created", "consent.changed", name="both")
    off, _ = subscribe(receiver.url("/off"), "contact.created", name="off")
    update_subscription(off, {"enabled": False}, actor="test")
    record_event("crm.contact.created", object_type="crm.contact", object_id=7)
    record_event("crm.contact.updated", object_type="crm.contact", object_id=7)  # nobody wants
    record_event("raw.retried", object_type="capture.rawmessage", object_id=3)  # no webhook
    rows = list(WebhookDelivery.objects.order_by("subscription_id").values_list(
        "subscription_id", "event_type"
    ))  # fmt: skip
    assert rows == [(contacts.pk, "contact.created"), (both.pk, "contact.created")]


def test_an_action_no_event_type_comes_from_costs_no_query(django_assert_num_queries):
    subscribe("http://127.0.0.1:9/hook", "contact.created")
    with django_assert_num_queries(1):  # the audit INSERT only
        record_events([build_event("raw.retried", object_id=1) for _ in range(50)])
    with django_assert_num_queries(3):  # INSERT events, read subscriptions, INSERT rows
        record_events([build_event("crm.contact.created", object_id=n) for n in range(50)])
    assert WebhookDelivery.objects.count() == 50


def test_captured_mail_gives_message_logged_once_per_message_with_ids_only(receiver, mail_fixture):
    _, secret = subscribe(receiver.url(), "message.logged", "contact.created")
    set_org_settings(auto_create_contacts="always")
    user = make_user(role=User.Role.ADMIN)
    raw = store_raw_message(
        RawSpec(data=mail_fixture("nested_multipart.eml"), channel="import", user_id=user.pk),
        enqueue=False,
    )
    outcome = process_raw_message(raw.pk)
    assert outcome.status == "processed"
    again = store_raw_message(
        RawSpec(data=mail_fixture("nested_multipart.eml"), channel="api", user_id=user.pk),
        enqueue=False,
    )
    assert process_raw_message(again.pk).duplicate  # a second capture: no new message
    logged = [b for b in bodies() if b["type"] == "message.logged"]
    assert [b["data"] for b in logged] == [
        {
            "id": outcome.email_id,
            "raw_message": raw.pk,
            "channel": "import",
            "stored": "full",
            "user": user.pk,
        }
    ]
    created = [b for b in bodies() if b["type"] == "contact.created"]
    assert created and all(b["data"]["source"] == "capture" for b in created)
    # Thin payloads: no address, subject or body of the mail is in any of them.
    text = " ".join(d.body for d in WebhookDelivery.objects.all())
    assert "@" not in text
    deliver_due()
    assert len(receiver.received) == WebhookDelivery.objects.count()
    assert all(verify_signature(secret, r.headers, r.body) for r in receiver.received)


def test_consent_and_manual_links_come_through_their_services(receiver, mail_fixture):
    subscribe(receiver.url(), "consent.changed", "thread.linked", "thread.unlinked")
    admin = make_user(role=User.Role.ADMIN)
    contact = make_contact(emails=("pat@acme-widgets.com",))
    record = record_consent(contact.pk, basis="contract", channel="api", actor=admin)
    raw = store_raw_message(
        RawSpec(data=mail_fixture("nested_multipart.eml"), channel="import", user_id=admin.pk),
        enqueue=False,
    )
    email_id = process_raw_message(raw.pk).email_id
    from capture.models import EmailMessage

    thread = EmailMessage.objects.get(pk=email_id).thread
    link_thread(thread, Target("contact", contact.pk), user=admin, actor=admin, channel="api")
    assert bodies()[0] == {
        "type": "consent.changed",
        "timestamp": bodies()[0]["timestamp"],
        "data": {
            "id": record.pk,
            "contact": contact.pk,
            "purpose": "processing",
            "basis": "contract",
            "action": "granted",
        },
    }
    assert bodies()[1]["type"] == "thread.linked"
    assert bodies()[1]["data"] == {
        "thread": thread.pk,
        "target": "contact",
        "target_id": contact.pk,
        "source": "manual",
    }


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_at_commit_the_change_commits_and_the_sweeper_delivers(
    receiver, settings
):
    """The outbox row commits with the change; the queue message that could not be sent is
    replaced by the sweeper's look at due rows."""
    _, secret = subscribe(receiver.url(), "contact.created")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    app.conf.task_always_eager = False
    saved = app.conf.broker_url, app.conf.broker_connection_max_retries
    app.conf.broker_url = settings.CELERY_BROKER_URL
    app.conf.broker_connection_max_retries = 0
    try:
        with transaction.atomic():
            record_event("crm.contact.created", object_type="crm.contact", object_id=9)
        # The commit went through although queuing failed after it.
        assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING
        assert receiver.received == []
    finally:
        app.conf.broker_url, app.conf.broker_connection_max_retries = saved
        app.conf.task_always_eager = True
        settings.CELERY_BROKER_URL = ""
    assert deliver_due() == 1
    assert verify_signature(secret, receiver.received[0].headers, receiver.received[0].body)
