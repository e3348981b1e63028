"""The add-in's API doors over the existing services: lookup (contact match, suggestions with
their why, saved state), contact creation with organization by domain, appointments saved as
meetings (recurrence, updates, more links without a duplicate), the capture address."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from capture.models import (
    Attachment,
    CaptureAddress,
    Category,
    EmailMessage,
    LinkRule,
    Meeting,
    ThreadLink,
)
from crm.models import Contact, Organization
from governance.models import AuditEvent
from tests.addin.conftest import addin_token, fixture_mail
from tests.factories import make_contact, make_item, make_organization, make_user

pytestmark = pytest.mark.django_db

PEOPLE = [
    {"address": "Ada@Acme-Tools.example", "name": "Ada Buyer"},
    {"address": "seller@ours.example", "name": "Seller"},
    {"address": "kim@shared.example", "name": "Kim"},
    {"address": "new.person@fresh-co.example", "name": "New Person"},
]


@pytest.fixture
def world(addin_user):
    acme = make_organization(name="Acme Tools", domains=("acme-tools.example",))
    ada = make_contact(
        first_name="Ada", last_name="Buyer", emails=("ada@acme-tools.example",), organization=acme
    )
    kim1 = make_contact(first_name="Kim", last_name="One", emails=("kim@shared.example",))
    kim2 = make_contact(first_name="Kim", last_name="Two", emails=("kim@shared.example",))
    deal = make_item(title="Spring range order", contacts=(ada,), organization=acme)
    Category.objects.create(name="Order")
    return {"acme": acme, "ada": ada, "kims": (kim1, kim2), "deal": deal}


def lookup(client, **body):
    response = client.post("/api/v1/addin/lookup/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_participants_show_one_none_or_several_contacts_and_the_organization_by_domain(
    addin_client, world, settings
):
    data = lookup(addin_client, participants=PEOPLE, subject="Order", message_id="<x@y>")
    by = {p["address"]: p for p in data["participants"]}
    ada = by["ada@acme-tools.example"]
    assert ada["match"] == "one" and ada["contacts"][0]["id"] == world["ada"].pk
    assert ada["contacts"][0]["organization"]["name"] == "Acme Tools"
    assert by["kim@shared.example"]["match"] == "several"
    assert {c["id"] for c in by["kim@shared.example"]["contacts"]} == {k.pk for k in world["kims"]}
    fresh = by["new.person@fresh-co.example"]
    assert fresh["match"] == "none" and fresh["new_organization"] == "Fresh Co"
    assert by["seller@ours.example"]["internal"] is True  # the user's own address
    assert data["saved"] is None
    assert data["categories"] == ["Order"]


def test_suggestions_carry_the_rules_and_the_rankings_why(addin_client, world):
    LinkRule.objects.create(kind="deal", strategy="single_open")
    data = lookup(addin_client, participants=PEOPLE, subject="Spring range")
    first = data["suggestions"][0]
    assert first["item"] == world["deal"].pk and first["source"] == "rule"
    assert "single_open" in first["why"][0] and "ada@acme-tools.example" in first["why"][0]
    LinkRule.objects.all().delete()
    other = make_item(title="Summer range", contacts=(world["ada"],))
    ranked = lookup(addin_client, participants=PEOPLE, subject="Spring range")["suggestions"]
    assert {s["item"] for s in ranked} == {world["deal"].pk, other.pk}
    assert all(s["source"] == "ranked" and s["why"] for s in ranked)
    # each with its reasons: the spring deal shares the subject's words
    spring = next(s for s in ranked if s["item"] == world["deal"].pk)
    assert any("spring" in w for w in spring["why"])
    assert any("participants" in w for w in spring["why"])


def test_a_saved_mail_shows_its_links_with_why_and_saving_again_adds_links_not_a_copy(
    addin_client, world, django_capture_on_commit_callbacks
):
    mime = base64.b64encode(fixture_mail()).decode()
    with django_capture_on_commit_callbacks(execute=True):
        first = addin_client.post(
            "/api/v1/captures/",
            {"mime_base64": mime, "links": {"items": [world["deal"].pk]}, "categories": ["Order"],
             "attachments": []},
            format="json",
        )  # fmt: skip
    assert first.status_code == 202, first.content
    email = EmailMessage.objects.get()
    assert Attachment.objects.get(email=email).dropped == Attachment.Dropped.NOT_SELECTED
    data = lookup(addin_client, participants=PEOPLE, message_id="<order-1@acme-tools.example>")
    saved = data["saved"]
    assert saved["email"] == email.pk and saved["categories"] == ["Order"]
    deal_link = next(link for link in saved["links"] if link["kind"] == "item")
    assert deal_link["target"] == world["deal"].pk and "add-in" in deal_link["why"]

    second_deal = make_item(title="Autumn range", contacts=(world["ada"],))
    with django_capture_on_commit_callbacks(execute=True):
        again = addin_client.post(
            "/api/v1/captures/",
            {"mime_base64": mime, "links": {"items": [second_deal.pk]}},
            format="json",
        )
    assert again.status_code == 202
    assert EmailMessage.objects.count() == 1
    linked = set(
        ThreadLink.objects.filter(thread=email.thread, item__isnull=False).values_list(
            "item", flat=True
        )
    )
    assert linked == {world["deal"].pk, second_deal.pk}


def test_another_users_mail_is_not_shown_as_saved(
    addin_client, world, django_capture_on_commit_callbacks
):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {addin_token(make_user())}")
    with django_capture_on_commit_callbacks(execute=True):
        other.post(
            "/api/v1/captures/",
            # the user is no participant of this mail
            {"mime_base64": base64.b64encode(fixture_mail(to="x@elsewhere.example")).decode()},
            format="json",
        )
    assert EmailMessage.objects.count() == 1
    assert lookup(addin_client, message_id="<order-1@acme-tools.example>")["saved"] is None


def test_creating_a_contact_makes_its_organization_from_the_domain_once(addin_client, addin_user):
    r = addin_client.post(
        "/api/v1/addin/contacts/", {"address": "New.Person@Fresh-Co.example", "name": "New Person"},
        format="json",
    )  # fmt: skip
    assert r.status_code == 201, r.content
    contact = Contact.objects.get(pk=r.json()["id"])
    assert (contact.first_name, contact.last_name) == ("New", "Person")
    assert contact.owner == addin_user and contact.marketing is False
    assert contact.emails.get().address == "new.person@fresh-co.example"
    org = contact.organization
    assert org.name == "Fresh Co" and list(org.domains.values_list("domain", flat=True)) == [
        "fresh-co.example"
    ]
    r2 = addin_client.post(
        "/api/v1/addin/contacts/", {"address": "b@fresh-co.example"}, format="json"
    )
    assert r2.json()["organization"]["id"] == org.pk and Organization.objects.count() == 1
    free = addin_client.post("/api/v1/addin/contacts/", {"address": "x@gmail.com"}, format="json")
    assert free.json()["organization"] is None
    assert AuditEvent.objects.filter(action="crm.contact.created").count() == 3
    assert AuditEvent.objects.filter(action="crm.organization.created").count() == 1
    bad = addin_client.post("/api/v1/addin/contacts/", {"address": "not an address"}, format="json")
    assert bad.status_code == 400 and "address" in bad.json()


APPOINTMENT = {
    "uid": "outlook-AAMkAD-weekly",
    "subject": "Weekly pipeline review",
    "start": "2026-12-07T09:00:00Z",
    "end": "2026-12-07T09:30:00Z",
    "location": "Room 4",
    "organizer": {"address": "seller@ours.example", "name": "Seller"},
    "attendees": [{"address": "ada@acme-tools.example", "name": "Ada Buyer"}],
    "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=6",
    "modified": "2026-12-01T08:00:00Z",
}


def save_appointment(client, capture, **changes):
    with capture(execute=True):
        r = client.post("/api/v1/addin/appointments/", {**APPOINTMENT, **changes}, format="json")
    assert r.status_code == 202, r.content
    return r.json()


def test_an_appointment_becomes_a_recurring_meeting_on_the_contacts_timeline(
    addin_client, world, django_capture_on_commit_callbacks
):
    save_appointment(
        addin_client, django_capture_on_commit_callbacks, links={"items": [world["deal"].pk]}
    )
    meeting = Meeting.objects.get(uid=APPOINTMENT["uid"])
    assert meeting.rrule == "FREQ=WEEKLY;COUNT=6;BYDAY=MO" and meeting.location == "Room 4"
    occurrences = addin_client.get(
        f"/api/v1/meetings/{meeting.pk}/occurrences/",
        {"start": "2026-12-01T00:00:00Z", "end": "2027-03-01T00:00:00Z"},
    )
    assert occurrences.status_code == 200, occurrences.content
    assert len(occurrences.json()["occurrences"]) == 6
    for path in (
        f"/api/v1/contacts/{world['ada'].pk}/timeline/",
        f"/api/v1/items/{world['deal'].pk}/timeline/",
    ):
        entries = addin_client.get(path).json()["results"]
        assert any((e["meeting"] or {}).get("summary") == meeting.summary for e in entries), (
            path,
            entries,
        )
    data = lookup(addin_client, uid=APPOINTMENT["uid"])
    assert data["meeting"]["id"] == meeting.pk and data["saved"]["links"]


def test_saving_the_changed_appointment_updates_the_meeting_and_unchanged_adds_links(
    addin_client, world, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    save_appointment(addin_client, capture)
    moved = save_appointment(
        addin_client, capture, start="2026-12-08T14:00:00Z", end="2026-12-08T15:00:00Z",
        modified="2026-12-02T08:00:00Z",
    )  # fmt: skip
    assert moved["duplicate"] is False
    meeting = Meeting.objects.get(uid=APPOINTMENT["uid"])
    assert meeting.start == datetime(2026, 12, 8, 14, 0, tzinfo=UTC)
    assert Meeting.objects.count() == 1
    emails = EmailMessage.objects.count()
    again = save_appointment(
        addin_client, capture, start="2026-12-08T14:00:00Z", end="2026-12-08T15:00:00Z",
        modified="2026-12-02T08:00:00Z", links={"items": [world["deal"].pk]},
    )  # fmt: skip
    assert again["message_id"] == moved["message_id"]
    assert EmailMessage.objects.count() == emails  # the same message: no copy
    assert ThreadLink.objects.filter(item=world["deal"]).exists()


def test_bad_appointments_are_400_with_field_errors(addin_client):
    r = addin_client.post(
        "/api/v1/addin/appointments/",
        {**APPOINTMENT, "rrule": "EVERY TUESDAY", "end": "2026-12-01T00:00:00Z"},
        format="json",
    )
    assert r.status_code == 400 and "rrule" in r.json()
    r = addin_client.post(
        "/api/v1/addin/appointments/", {**APPOINTMENT, "end": "2026-12-01T00:00:00Z"}, format="json"
    )
    assert r.status_code == 400 and "end" in r.json()


def test_the_capture_address_is_made_once_and_audited(addin_client, addin_user):
    first = addin_client.post("/api/v1/addin/capture-address/").json()["address"]
    assert addin_client.post("/api/v1/addin/capture-address/").json()["address"] == first
    assert CaptureAddress.objects.get(user=addin_user).address == first
