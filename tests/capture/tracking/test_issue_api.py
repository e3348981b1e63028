"""POST /api/v1/tracking/: tracking is issued only for recipients eligible under
governance.eligibility (the compose check's answer), anonymously for several recipients."""

from __future__ import annotations

import pytest

from capture.models import TrackedContact, TrackedMessage
from governance.models import AuditEvent, UserSettings
from tests.capture.tracking.conftest import grant, tracking_consent, withdraw
from tests.factories import make_contact, make_never_log_rule, make_user, set_org_settings

pytestmark = pytest.mark.django_db
URL = "/api/v1/tracking/"


def issue(client, recipients, **extra):
    body = {"message_id": "<m1@ourco.test>", "recipients": recipients, **extra}
    return client.post(URL, body, format="json")


def test_one_recipient_with_a_contact_gets_a_pixel_and_click_urls(sender, api_client):
    c = make_contact(emails=("ann@client.test",))
    r = issue(
        api_client(sender),
        ["Ann@Client.test"],
        subject="Offer",
        links=["https://example.org/offer?id=1", "http://example.org/b"],
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["tracked"] is True and body["reason"] == "ok" and body["mode"] == "recipient"
    assert body["message_id"] == "m1@ourco.test"
    assert body["open_pixel_url"].startswith("http://testserver/t/o/")
    assert [link["url"] for link in body["links"]] == [
        "https://example.org/offer?id=1",
        "http://example.org/b",
    ]
    assert all(link["tracked_url"].startswith("http://testserver/t/c/") for link in body["links"])
    assert body["recipients"] == [
        {
            "address": "ann@client.test",
            "tracked": True,
            "reason": "ok",
            "contacts": [c.pk],
            "internal": False,
        }
    ]
    assert body["refused"] == []
    tracked = TrackedMessage.objects.get(message_id="m1@ourco.test")
    assert (tracked.sender, tracked.mode, tracked.subject) == (sender, "recipient", "Offer")
    assert list(TrackedContact.objects.values_list("contact_id", flat=True)) == [c.pk]
    event = AuditEvent.objects.get(action="tracking.issued")
    assert event.object_id == str(tracked.pk) and event.actor_user_id == sender.pk
    assert "ann@client.test" not in str(event.detail)


def test_privacy_mode_refuses_a_recipient_without_a_legal_basis(sender, api_client):
    set_org_settings(privacy_mode=True)
    c = make_contact(emails=("bob@client.test",))
    tracking_consent(c, "granted")  # tracking consent alone is not a basis for processing
    r = issue(api_client(sender), ["bob@client.test"], links=["https://example.org/"])
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["tracked"], body["reason"], body["mode"]) == (False, "no_eligible_recipient", None)
    assert body["open_pixel_url"] is None and body["links"] == []
    assert body["refused"] == [
        {
            "address": "bob@client.test",
            "tracked": False,
            "reason": "no_legal_basis",
            "contacts": [c.pk],
            "internal": False,
        }
    ]
    assert not TrackedMessage.objects.exists()
    assert not AuditEvent.objects.filter(action="tracking.issued").exists()


def test_privacy_mode_tracks_a_contact_with_a_basis_and_tracking_consent(sender, api_client):
    set_org_settings(privacy_mode=True)
    c = make_contact(emails=("cat@client.test",))
    grant(c)
    body = issue(api_client(sender), ["cat@client.test"]).json()
    assert (body["tracked"], body["refused"][0]["reason"]) == (False, "no_tracking_consent")
    tracking_consent(c, "granted")
    body = issue(api_client(sender), ["cat@client.test"]).json()
    assert (body["tracked"], body["mode"]) == (True, "recipient")


def test_a_withdrawn_consent_or_a_never_log_rule_refuses_whatever_the_privacy_mode(
    sender, api_client
):
    c = make_contact(emails=("dan@client.test",))
    withdraw(c)
    make_never_log_rule("noise.test")
    client = api_client(sender)
    body = issue(client, ["dan@client.test"]).json()
    assert (body["tracked"], body["refused"][0]["reason"]) == (False, "consent_withdrawn")
    body = issue(client, ["x@noise.test"]).json()
    assert (body["tracked"], body["refused"][0]["reason"]) == (False, "never_log")


def test_one_recipient_who_is_not_a_contact_is_not_tracked(sender, api_client):
    body = issue(api_client(sender), ["stranger@else.test"]).json()
    assert (body["tracked"], body["refused"][0]["reason"]) == (False, "not_a_contact")


def test_several_recipients_are_tracked_anonymously(sender, api_client):
    a = make_contact(emails=("a@client.test",))
    b = make_contact(emails=("b@client.test",))
    r = issue(
        api_client(sender), ["a@client.test", "b@client.test", "kim@ourco.test", "x@else.test"]
    )
    body = r.json()
    assert (body["tracked"], body["mode"]) == (True, "anonymous")
    reasons = {x["address"]: x["reason"] for x in body["recipients"]}
    assert reasons == {
        "a@client.test": "ok",
        "b@client.test": "ok",
        "kim@ourco.test": "internal",
        "x@else.test": "not_a_contact",
    }
    assert [x["address"] for x in body["refused"]] == ["kim@ourco.test", "x@else.test"]
    tracked = TrackedMessage.objects.get()
    assert (tracked.mode, tracked.recipient_count) == ("anonymous", 4)
    assert set(tracked.contacts.values_list("contact_id", flat=True)) == {a.pk, b.pk}


def test_one_refused_recipient_among_several_stops_tracking_of_the_mail(sender, api_client):
    """The pixel is in the one body every recipient gets: it would record their opens too."""
    set_org_settings(privacy_mode=True)
    a = make_contact(emails=("a@client.test",))
    grant(a)
    tracking_consent(a, "granted")
    make_contact(emails=("nobasis@client.test",))
    body = issue(api_client(sender), ["a@client.test", "nobasis@client.test"]).json()
    assert (body["tracked"], body["reason"], body["mode"]) == (False, "recipient_refused", None)
    assert {x["address"]: x["reason"] for x in body["refused"]} == {
        "a@client.test": "recipient_refused",
        "nobasis@client.test": "no_legal_basis",
    }
    assert not TrackedMessage.objects.exists()


def test_tracking_locked_off_by_the_org_refuses_but_a_default_off_does_not(sender, api_client):
    make_contact(emails=("ann@client.test",))
    client = api_client(sender)
    set_org_settings(track_by_default=False, enforce_track=False)
    UserSettings.objects.create(user=sender, track=False)
    body = issue(client, ["ann@client.test"]).json()
    assert body["tracked"] is True  # asking to track this mail is the user's choice for it
    set_org_settings(track_by_default=False, enforce_track=True)
    body = issue(client, ["ann@client.test"]).json()
    assert (body["tracked"], body["refused"][0]["reason"]) == (False, "tracking_off")


def test_issuing_again_for_the_same_message_replaces_it_and_another_user_gets_409(
    sender, api_client
):
    make_contact(emails=("ann@client.test",))
    make_contact(emails=("bea@client.test",))
    client = api_client(sender)
    first = issue(client, ["ann@client.test"]).json()
    again = issue(client, ["ann@client.test", "bea@client.test"]).json()
    assert first["tracked_message"] == again["tracked_message"]
    assert TrackedMessage.objects.get().mode == "anonymous"
    other = make_user(email="olga@ourco.test")
    r = issue(api_client(other), ["ann@client.test"])
    assert r.status_code == 409 and r.json()["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message_id": "no-at-sign", "recipients": ["a@b.test"]}, "message_id"),
        ({"message_id": "<m@x>", "recipients": []}, "recipients"),
        ({"message_id": "<m@x>", "recipients": ["not an address"]}, "recipients"),
        ({"message_id": "<m@x>", "recipients": ["a@b.test"], "links": ["javascript:alert(1)"]}, "links"),
        ({"message_id": "<m@x>", "recipients": ["a@b.test"], "links": ["/relative"]}, "links"),
        ({"message_id": "<m@x>", "recipients": ["a@b.test"], "links": ["https://a b.test/"]}, "links"),
        ({"message_id": "<m@x>", "recipients": ["a@b.test"], "extra": 1}, "extra"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(sender, api_client, body, field):
    r = api_client(sender).post(URL, body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()


def test_a_token_without_capture_write_may_not_issue(sender, api_client):
    make_contact(emails=("ann@client.test",))
    r = issue(api_client(sender, scopes=("capture:read",)), ["ann@client.test"])
    assert r.status_code == 403
    assert not TrackedMessage.objects.exists()
