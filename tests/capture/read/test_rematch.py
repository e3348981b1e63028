from __future__ import annotations

import pytest

from capture.models import Participant, ReviewItem, ThreadLink
from crm.models import ContactEmail
from crm.services import contact_addresses_added
from governance.models import AuditEvent
from tests.capture.read.conftest import capture_bytes
from tests.factories import make_contact, make_user

MAIL = (
    b"From: Pat Prospect <pat@newco.example>\r\nTo: alice@mailwarden-demo.com\r\n"
    b"Subject: Pricing question\r\nMessage-ID: <pricing-1@newco.example>\r\n"
    b"Date: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\nHow much?\r\n"
)


@pytest.mark.django_db(transaction=True)
def test_contact_gaining_an_address_matches_earlier_participants_and_runs_the_backfill():
    alice = make_user(username="alice", email="alice@mailwarden-demo.com")
    capture_bytes(MAIL, alice)  # inbound: no contact is auto-created under the default policy
    p = Participant.objects.get(address="pat@newco.example")
    assert p.match == Participant.Match.UNMATCHED

    contact = make_contact()
    ContactEmail.objects.create(contact=contact, address="pat@newco.example", is_primary=True)
    contact_addresses_added(["pat@newco.example"])  # outside a transaction: runs at once

    p.refresh_from_db()
    assert p.match == Participant.Match.MATCHED and p.contact_id == contact.pk
    assert ThreadLink.objects.filter(thread=p.email.thread, contact=contact).exists()
    # the link rules ran over the thread (capture/links.py run_backfill): nothing is left
    # for a person to act on
    assert not ReviewItem.objects.filter(kind=ReviewItem.Kind.REMATCH_BACKFILL).exists()
    assert AuditEvent.objects.filter(action="links.backfilled", channel="rematch").exists()


@pytest.mark.django_db(transaction=True)
def test_address_shared_by_two_contacts_stays_unmatched_for_review():
    alice = make_user(username="alice", email="alice@mailwarden-demo.com")
    capture_bytes(MAIL, alice)
    make_contact(emails=("pat@newco.example",))
    make_contact(emails=("pat@newco.example",))
    contact_addresses_added(["pat@newco.example"])
    assert Participant.objects.get(address="pat@newco.example").match == Participant.Match.UNMATCHED


@pytest.mark.django_db(transaction=True)
def test_contact_created_through_the_api_rematches_earlier_mail():
    from rest_framework.test import APIClient

    from crm.models import ApiToken

    alice = make_user(username="alice", email="alice@mailwarden-demo.com")
    capture_bytes(MAIL, alice)
    _, key = ApiToken.issue(user=alice, name="crm", scopes=["crm:write", "crm:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    res = client.post(
        "/api/v1/contacts/",
        {"first_name": "Pat", "emails": [{"address": "PAT@NewCo.example", "is_primary": True}]},
        format="json",
    )
    assert res.status_code == 201, res.content
    p = Participant.objects.get(address="pat@newco.example")
    assert p.match == Participant.Match.MATCHED and p.contact_id == res.json()["id"]
