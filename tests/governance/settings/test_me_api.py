"""`/api/v1/me/...`: every user's own settings, addresses and personal never-log rules."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import ApiToken, User, UserAddress
from governance.models import AuditEvent, NeverLogRule, UserSettings
from tests.crm.api_helpers import token_client
from tests.factories import make_never_log_rule, make_user, set_org_settings

pytestmark = pytest.mark.django_db


def session(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def add_address(django_capture_on_commit_callbacks):
    """POST an address and run the after-commit callbacks (the code is mailed after commit)."""

    def add(client: APIClient, address: str):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/v1/me/addresses/", {"address": address}, format="json")

    return add


def mailed_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


# --- settings ---------------------------------------------------------------------------------


def test_any_signed_in_user_reads_their_settings_with_values_and_locks():
    set_org_settings(track_by_default=True, enforce_track=True, log_all_by_default=False)
    body = session(make_user(role="member")).get("/api/v1/me/settings/").json()
    assert body["track"] == {"value": True, "locked": True, "choice": None}
    assert body["log_all"] == {"value": False, "locked": False, "choice": None}
    assert body["log_internal_mail"] is False
    assert APIClient().get("/api/v1/me/settings/").status_code in (401, 403)


def test_a_user_changes_an_unlocked_setting_and_the_change_is_audited_with_field_names_only():
    user = make_user()
    response = session(user).patch(
        "/api/v1/me/settings/",
        {"log_all": True, "associations": ["ticket", "contact"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["log_all"] == {"value": True, "locked": False, "choice": True}
    assert response.json()["associations"]["value"] == ["contact", "ticket"]
    event = AuditEvent.objects.get(action="settings.changed")
    assert event.detail == {"user": user.pk, "fields": ["associations", "log_all"]}
    assert event.channel == "api"


def test_patching_a_locked_setting_is_a_400_that_says_it_is_locked():
    set_org_settings(enforce_log_all=True)
    user = make_user()
    response = session(user).patch("/api/v1/me/settings/", {"log_all": True}, format="json")
    assert response.status_code == 400
    assert "Locked" in response.json()["log_all"][0]
    assert not UserSettings.objects.filter(user=user).exists()
    assert not AuditEvent.objects.filter(action="settings.changed").exists()


def test_bad_setting_values_and_unknown_fields_are_400s():
    client = session(make_user())
    for body in ({"associations": ["invoice"]}, {"track": "maybe"}, {"colour": "red"}):
        assert client.patch("/api/v1/me/settings/", body, format="json").status_code == 400


def test_null_returns_a_setting_to_the_organisation_default():
    set_org_settings(track_by_default=True)
    user = make_user()
    client = session(user)
    client.patch("/api/v1/me/settings/", {"track": False}, format="json")
    body = client.patch("/api/v1/me/settings/", {"track": None}, format="json").json()
    assert body["track"] == {"value": True, "locked": False, "choice": None}


def test_a_token_needs_capture_write_to_change_settings():
    reader = token_client([ApiToken.Scope.CAPTURE_READ])
    assert reader.get("/api/v1/me/settings/").status_code == 200
    assert reader.patch("/api/v1/me/settings/", {"track": True}, format="json").status_code == 403


# --- connected addresses and aliases ------------------------------------------------------------


def test_an_added_address_counts_as_the_users_own_only_after_the_mailed_code(add_address):
    user = make_user(email="sam@mailwarden-demo.com")
    client = session(user)
    response = add_address(client, "Sam@Home.Example")
    assert response.status_code == 201, response.content
    row_id = response.json()["id"]
    assert response.json()["verified"] is False
    assert mail.outbox[-1].to == ["sam@home.example"]
    assert "sam@home.example" not in user.own_addresses()
    row = UserAddress.objects.get(pk=row_id)
    assert mailed_code() not in row.code_hash  # hashed at rest
    verified = client.post(
        f"/api/v1/me/addresses/{row_id}/verify/", {"code": mailed_code()}, format="json"
    )
    assert verified.status_code == 200, verified.content
    assert verified.json()["verified"] is True
    assert "sam@home.example" in user.own_addresses()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"crm.user_address.added", "crm.user_address.verified"} <= actions
    assert not any("home.example" in str(e.detail) for e in AuditEvent.objects.all())


def test_a_code_is_single_use(add_address):
    client = session(make_user())
    row_id = add_address(client, "a@home.example").json()["id"]
    code = mailed_code()
    url = f"/api/v1/me/addresses/{row_id}/verify/"
    assert client.post(url, {"code": code}, format="json").status_code == 200
    again = client.post(url, {"code": code}, format="json")
    assert again.status_code == 400
    assert again.json()["code"] == "already_verified"


def test_a_wrong_code_counts_and_too_many_lock_the_code_until_a_new_one_is_asked_for(add_address):
    client = session(make_user())
    row_id = add_address(client, "a@home.example").json()["id"]
    code = mailed_code()
    wrong = "000000" if code != "000000" else "111111"
    url = f"/api/v1/me/addresses/{row_id}/verify/"
    for _ in range(5):
        answer = client.post(url, {"code": wrong}, format="json")
        assert answer.status_code == 400 and answer.json()["code"] == "wrong_code"
    locked = client.post(url, {"code": code}, format="json")
    assert locked.json()["code"] == "too_many_attempts"
    add_address(client, "a@home.example")
    assert client.post(url, {"code": mailed_code()}, format="json").status_code == 200


def test_an_expired_code_is_refused(add_address):
    client = session(make_user())
    row_id = add_address(client, "a@home.example").json()["id"]
    UserAddress.objects.filter(pk=row_id).update(code_expires=timezone.now() - timedelta(seconds=1))
    answer = client.post(
        f"/api/v1/me/addresses/{row_id}/verify/", {"code": mailed_code()}, format="json"
    )
    assert answer.json()["code"] == "code_expired"


def test_another_users_address_cannot_be_claimed_seen_or_deleted(add_address):
    owner = make_user()
    theirs = UserAddress.objects.create(user=owner, address="owner@home.example")
    client = session(make_user())
    claim = add_address(client, "owner@home.example")
    assert claim.status_code == 400 and claim.json()["code"] == "address_taken"
    assert client.get("/api/v1/me/addresses/").json()["results"] == []
    assert client.delete(f"/api/v1/me/addresses/{theirs.pk}/").status_code == 404
    assert UserAddress.objects.filter(pk=theirs.pk).exists()


def test_a_user_removes_their_own_address_audited():
    user = make_user()
    row = UserAddress.objects.create(user=user, address="old@home.example")
    assert session(user).delete(f"/api/v1/me/addresses/{row.pk}/").status_code == 204
    assert not UserAddress.objects.filter(pk=row.pk).exists()
    assert AuditEvent.objects.filter(action="crm.user_address.removed").exists()


# --- personal never-log rules ---------------------------------------------------------------


def test_a_user_adds_a_personal_never_log_rule_and_sees_only_their_own():
    user, other = make_user(), make_user()
    make_never_log_rule("theirs.example", user=other)
    client = session(user)
    response = client.post(
        "/api/v1/me/never-log/", {"kind": "domain", "value": "Mail.Doctor.co.uk"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["value"] == "doctor.co.uk"
    listed = client.get("/api/v1/me/never-log/").json()["results"]
    assert [r["value"] for r in listed] == ["doctor.co.uk"]
    assert NeverLogRule.objects.get(value="doctor.co.uk").user == user
    event = AuditEvent.objects.get(action="governance.neverlogrule.created")
    assert "doctor" not in str(event.detail)


def test_a_bad_or_duplicate_personal_rule_is_a_400():
    client = session(make_user())
    assert (
        client.post("/api/v1/me/never-log/", {"kind": "address", "value": "nope"}).status_code
        == 400
    )
    client.post("/api/v1/me/never-log/", {"kind": "domain", "value": "x.example"})
    again = client.post("/api/v1/me/never-log/", {"kind": "domain", "value": "x.example"})
    assert again.status_code == 400


def test_a_compliance_officer_who_is_not_an_admin_does_not_see_others_personal_rules():
    make_never_log_rule("private.example", user=make_user())
    org_rule = make_never_log_rule("org.example")
    officer = make_user(is_staff=True, role="compliance")
    listed = session(officer).get("/api/v1/never-log-rules/").json()["results"]
    assert [r["id"] for r in listed] == [org_rule.pk]
    admin = make_user(is_staff=True, role="admin")
    assert len(session(admin).get("/api/v1/never-log-rules/").json()["results"]) == 2
