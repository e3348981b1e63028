"""POST /api/v1/compose/check: per recipient match / may log / may track / reason, the user's
defaults and suggested records, anonymous tracking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Item
from governance.consent import record_consent
from governance.models import UserSettings
from tests.crm.api_helpers import token_client
from tests.factories import (
    make_contact,
    make_item,
    make_never_log_rule,
    make_user,
    set_org_settings,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/compose/check"
OURS = "mailwarden-demo.com"


@pytest.fixture
def sam():
    set_org_settings(internal_domains=[OURS], track_by_default=True, log_all_by_default=True)
    return make_user(email=f"sam@{OURS}")


@pytest.fixture
def client(sam):
    return token_client(["capture:read"], user=sam)


def check(client, to=(), cc=(), bcc=(), sender=f"sam@{OURS}"):
    body = {"sender": sender, "to": list(to), "cc": list(cc), "bcc": list(bcc)}
    response = client.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def by_address(result):
    return {r["address"]: r for r in result["recipients"]}


def test_each_recipient_gets_its_match_and_verdict(client, sam):
    one = make_contact(emails=("one@client.test",))
    a = make_contact(emails=("shared@client.test",), owner=sam)
    b = make_contact(emails=("shared@client.test",))
    make_never_log_rule("secret.test")
    result = check(
        client,
        to=["One@Client.test"],
        cc=["shared@client.test", "x@secret.test"],
        bcc=["nobody@client.test", f"dev@{OURS}"],
    )
    rows = by_address(result)
    assert rows["one@client.test"]["match"] == "one"
    assert rows["one@client.test"]["contact"] == one.pk
    assert rows["one@client.test"]["role"] == "to"
    assert (rows["one@client.test"]["may_log"], rows["one@client.test"]["may_track"]) == (
        True,
        True,
    )
    shared = rows["shared@client.test"]
    assert shared["match"] == "several" and shared["contact"] is None
    assert [c["contact"] for c in shared["candidates"]] == [a.pk, b.pk]  # the user's own first
    assert shared["candidates"][0]["why"][0]["code"] == "owner"
    assert rows["nobody@client.test"]["match"] == "none"
    assert rows["nobody@client.test"]["track_reason"] == "not_a_contact"
    assert (rows["x@secret.test"]["may_log"], rows["x@secret.test"]["log_reason"]) == (
        False,
        "never_log",
    )
    assert rows[f"dev@{OURS}"]["internal"] and rows[f"dev@{OURS}"]["track_reason"] == "internal"
    assert result["tracking"]["anonymous"] is True


def test_privacy_mode_refuses_tracking_for_a_recipient_without_a_legal_basis(client):
    set_org_settings(privacy_mode=True)
    ok = make_contact(emails=("ok@client.test",))
    record_consent(ok.pk, basis="contract", channel="admin")
    record_consent(ok.pk, purpose="tracking", basis="consent", action="granted", channel="admin")
    make_contact(emails=("nobasis@client.test",))
    rows = by_address(check(client, to=["ok@client.test", "nobasis@client.test"]))
    assert (rows["ok@client.test"]["may_log"], rows["ok@client.test"]["may_track"]) == (True, True)
    assert rows["ok@client.test"]["basis"] == "contract"
    nob = rows["nobasis@client.test"]
    assert (nob["may_log"], nob["may_track"], nob["track_reason"]) == (
        False,
        False,
        "no_legal_basis",
    )


def test_a_single_recipient_is_tracked_by_name_and_defaults_follow_the_settings(client, sam):
    make_contact(emails=("one@client.test",))
    result = check(client, to=["one@client.test"])
    assert result["tracking"] == {"anonymous": False, "eligible": ["one@client.test"]}
    assert (result["defaults"]["log"], result["defaults"]["track"]) == (True, True)
    UserSettings.objects.create(user=sam, track=False, associations=["deal"])
    result = check(client, to=["one@client.test"])
    assert result["defaults"]["track"] is False
    assert result["defaults"]["associations"] == ["deal"]
    assert by_address(result)["one@client.test"]["track_reason"] == "tracking_off"


def test_the_suggested_records_are_the_five_most_recently_active_open_items(client):
    c = make_contact(emails=("one@client.test",))
    now = timezone.now()
    items = [make_item(contacts=(c,), last_activity_at=now - timedelta(days=n)) for n in range(7)]
    make_item(contacts=(c,), status=Item.Status.WON, last_activity_at=now)  # closed: never
    make_item(contacts=(c,), kind=Item.Kind.TICKET, last_activity_at=now - timedelta(days=30))
    suggested = check(client, to=["one@client.test"])["defaults"]["suggested"]
    assert [s["id"] for s in suggested] == [i.pk for i in items[:5]]
    assert all(s["kind"] == "deal" for s in suggested)


def test_the_suggested_records_follow_the_association_kinds(client, sam):
    c = make_contact(emails=("one@client.test",))
    make_item(contacts=(c,))
    ticket = make_item(contacts=(c,), kind=Item.Kind.TICKET)
    UserSettings.objects.create(user=sam, associations=["contact", "ticket"])
    suggested = check(client, to=["one@client.test"])["defaults"]["suggested"]
    assert [s["id"] for s in suggested] == [ticket.pk]


def test_a_sender_who_is_not_the_user_logs_and_tracks_nothing(client):
    make_contact(emails=("one@client.test",))
    result = check(client, to=["one@client.test"], sender="someone@else.test")
    row = by_address(result)["one@client.test"]
    assert result["sender"] == {"address": "someone@else.test", "own": False}
    assert (row["may_log"], row["log_reason"], row["may_track"]) == (False, "sender_not_own", False)
    assert result["defaults"]["log"] is False and result["defaults"]["suggested"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"sender": f"sam@{OURS}"},
        {"sender": "not an address", "to": ["a@b.test"]},
        {"sender": f"sam@{OURS}", "to": ["a@b.test", "bad address"]},
        {"sender": f"sam@{OURS}", "to": "a@b.test"},
        {"sender": f"sam@{OURS}", "to": ["a@b.test"], "unknown": 1},
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, body):
    response = client.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) & {"sender", "to", "unknown", "non_field_errors"}


def test_a_token_without_capture_read_is_refused(sam):
    client = token_client(["crm:read"], user=sam)
    response = client.post(URL, {"sender": f"sam@{OURS}", "to": ["a@b.test"]}, format="json")
    assert response.status_code == 403


def test_the_check_is_documented_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    op = schema["paths"]["/api/v1/compose/check"]["post"]
    assert {"200", "400", "401", "403"} <= set(op["responses"])
