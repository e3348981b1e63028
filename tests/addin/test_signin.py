"""Sign-in of the add-in by device code, and sign-out: the pane never sees a pasted secret."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from capture.addin import signin
from capture.models import AddinDeviceGrant
from crm.models import ApiToken
from governance.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def poll(device_code: str):
    return Client().post(
        "/addin/device/token/", {"device_code": device_code}, content_type="application/json"
    )


def start() -> dict:
    response = Client().post("/addin/device/start/")
    assert response.status_code == 200
    return response.json()


def test_start_poll_approve_poll_gives_one_scoped_token_once():
    user = make_user(password="pw-long-enough-1")
    grant = start()
    assert len(grant["user_code"]) == 9 and grant["user_code"][4] == "-"
    assert grant["verification_uri_complete"].endswith(
        f"/addin/activate/?code={grant['user_code']}"
    )
    assert AddinDeviceGrant.objects.get().device_code_hash != grant["device_code"]

    pending = poll(grant["device_code"])
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/addin/activate/?code={grant['user_code']}")
    assert page.status_code == 200 and grant["user_code"].encode() in page.content
    typed = grant["user_code"].lower().replace("-", " ")  # as a person may type it
    done = browser.post("/addin/activate/", {"code": typed, "decision": "approve"})
    assert done.status_code == 200 and b"Approved" in done.content

    answer = poll(grant["device_code"])
    assert answer.status_code == 200, answer.content
    body = answer.json()
    token = ApiToken.objects.get(prefix=body["access_token"][:10])
    assert token.user == user and token.name == signin.TOKEN_NAME
    assert sorted(token.scopes) == sorted(signin.ADDIN_SCOPES)
    assert token.expires_at is not None
    assert poll(grant["device_code"]).json()["error"] == "invalid_grant"  # consumed

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert client.post("/api/v1/addin/lookup/", {}, format="json").status_code == 200
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"addin.sign_in_approved", "addin.signed_in"} <= actions


def test_the_activate_page_needs_a_login_and_a_denied_code_gives_no_token():
    grant = start()
    anonymous = Client().get(f"/addin/activate/?code={grant['user_code']}")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/addin/login/")
    user = make_user(password="pw-long-enough-2")
    browser = Client()
    browser.force_login(user)
    browser.post("/addin/activate/", {"code": grant["user_code"], "decision": "deny"})
    assert poll(grant["device_code"]).json()["error"] == "access_denied"
    assert not ApiToken.objects.exists()


def test_unknown_expired_and_malformed_codes_are_refused_clearly():
    user = make_user(password="pw-long-enough-3")
    browser = Client()
    browser.force_login(user)
    wrong = browser.post("/addin/activate/", {"code": "BCDF-GHJK", "decision": "approve"})
    assert wrong.status_code == 400 and b"No pending sign-in" in wrong.content
    assert poll("nope").json()["error"] == "invalid_grant"
    bad = Client().post("/addin/device/token/", data="{", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    grant = start()
    AddinDeviceGrant.objects.update(expires_at="2000-01-01T00:00:00Z")
    assert poll(grant["device_code"]).json()["error"] == "expired_token"
    late = browser.post("/addin/activate/", {"code": grant["user_code"], "decision": "approve"})
    assert late.status_code == 400


def test_sign_out_revokes_the_add_in_token_and_only_an_add_in_token(addin_client):
    assert addin_client.post("/api/v1/addin/sign-out/").status_code == 204
    assert addin_client.post("/api/v1/addin/lookup/", {}, format="json").status_code == 401
    assert ApiToken.objects.get().revoked_at is not None
    assert AuditEvent.objects.filter(action="crm.apitoken.revoked").exists()

    _, key = ApiToken.issue(user=make_user(), name="integration", scopes=["capture:read"])
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert other.post("/api/v1/addin/sign-out/").status_code == 403
    assert ApiToken.objects.get(name="integration").revoked_at is None


def test_starting_sign_ins_is_bounded_per_client_address():
    from django.core.cache import cache

    from capture.addin import views

    cache.clear()
    answers = [
        Client().post("/addin/device/start/").status_code for _ in range(views.START_LIMIT + 1)
    ]
    assert answers[:-1] == [200] * views.START_LIMIT
    assert answers[-1] == 429
    assert AddinDeviceGrant.objects.count() == views.START_LIMIT
    cache.clear()
