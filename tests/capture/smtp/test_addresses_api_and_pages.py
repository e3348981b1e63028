"""The capture-address API, the /me/ settings page and the admin actions."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from capture.addresses import get_or_create_capture_address, resolve_capture_address
from capture.models import CaptureAddress, SmtpRateEvent
from crm.models import ApiToken, User
from governance.models import AuditEvent
from tests.factories import make_user, make_user_address

pytestmark = pytest.mark.django_db


def client_for(user, *scopes):
    _token, secret = ApiToken.issue(user=user, name="t", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_user_lists_only_their_own_addresses_and_an_admin_sees_all():
    ann, bob = make_user(), make_user()
    admin = make_user(role=User.Role.ADMIN)
    mine = get_or_create_capture_address(ann)
    get_or_create_capture_address(bob)
    body = client_for(ann, "capture:read").get("/api/v1/capture-addresses/").json()
    assert [r["address"] for r in body["results"]] == [mine.address]
    body = client_for(admin, "capture:read").get("/api/v1/capture-addresses/").json()
    assert len(body["results"]) == 2


def test_reading_needs_the_capture_read_scope():
    ann = make_user()
    assert client_for(ann, "crm:read").get("/api/v1/capture-addresses/").status_code == 403


def test_rotate_through_the_api_answers_the_new_address_and_the_old_one_stops_working():
    ann = make_user()
    old = get_or_create_capture_address(ann)
    resp = client_for(ann, "capture:write").post(f"/api/v1/capture-addresses/{old.pk}/rotate/")
    assert resp.status_code == 201
    assert resp.json()["address"] != old.address
    assert resolve_capture_address(old.address) is None
    assert resolve_capture_address(resp.json()["address"]).user == ann
    assert AuditEvent.objects.get(action="capture_address.rotate").channel == "api"


def test_a_user_cannot_rotate_or_revoke_someone_elses_address():
    ann, bob = make_user(), make_user()
    bobs = get_or_create_capture_address(bob)
    client = client_for(ann, "capture:write")
    assert client.post(f"/api/v1/capture-addresses/{bobs.pk}/rotate/").status_code == 404
    assert client.post(f"/api/v1/capture-addresses/{bobs.pk}/revoke/").status_code == 404
    assert resolve_capture_address(bobs.address) == bobs


def test_revoke_through_the_api():
    ann = make_user()
    addr = get_or_create_capture_address(ann)
    resp = client_for(ann, "capture:write").post(f"/api/v1/capture-addresses/{addr.pk}/revoke/")
    assert resp.status_code == 200 and resp.json()["active"] is False
    assert resolve_capture_address(addr.address) is None


def test_only_an_admin_creates_a_shared_address_for_a_named_owner():
    ann = make_user()
    admin = make_user(role=User.Role.ADMIN)
    payload = {"kind": "shared", "label": "support inbox", "owner": ann.pk}
    assert (
        client_for(ann, "capture:write").post("/api/v1/capture-addresses/", payload).status_code
        == 400
    )
    resp = client_for(admin, "capture:write").post("/api/v1/capture-addresses/", payload)
    assert resp.status_code == 201, resp.json()
    shared = CaptureAddress.objects.get(pk=resp.json()["id"])
    assert (shared.kind, shared.user, shared.label) == ("shared", ann, "support inbox")


def test_a_user_may_create_another_personal_address_for_themselves():
    ann = make_user()
    resp = client_for(ann, "capture:write").post(
        "/api/v1/capture-addresses/", {"label": "for the phone"}
    )
    assert resp.status_code == 201
    assert CaptureAddress.objects.get(pk=resp.json()["id"]).user == ann


def test_the_me_page_shows_the_capture_address_and_own_addresses(client):
    ann = make_user(username="ann", email="ann@mailwarden-demo.com", password="pw-ann-long")
    make_user_address(ann, "ann.alias@brand.example")
    client.force_login(ann)
    page = client.get("/me/").content.decode()
    addr = CaptureAddress.objects.get(user=ann)
    assert addr.address in page
    assert "ann@mailwarden-demo.com" in page and "ann.alias@brand.example" in page


def test_the_me_page_rotates_the_users_own_address(client):
    ann = make_user()
    old = get_or_create_capture_address(ann)
    client.force_login(ann)
    resp = client.post("/me/", {"action": "rotate", "id": old.pk}, follow=True)
    assert resp.status_code == 200
    new = CaptureAddress.objects.get(user=ann, active=True)
    assert new.pk != old.pk and new.address in resp.content.decode()
    other = get_or_create_capture_address(make_user())
    assert client.post("/me/", {"action": "rotate", "id": other.pk}).status_code == 404


def test_the_me_page_needs_a_login(client):
    assert client.get("/me/").status_code == 302


def test_admin_actions_rotate_and_revoke_and_the_rate_events_are_listed(admin_client):
    ann = make_user()
    a = get_or_create_capture_address(ann)
    url = "/admin/capture/captureaddress/"
    resp = admin_client.post(
        url, {"action": "rotate_addresses", "_selected_action": [a.pk]}, follow=True
    )
    assert resp.status_code == 200
    new = CaptureAddress.objects.get(user=ann, active=True)
    assert new.pk != a.pk
    admin_client.post(url, {"action": "revoke_addresses", "_selected_action": [new.pk]})
    assert not CaptureAddress.objects.filter(user=ann, active=True).exists()
    SmtpRateEvent.objects.create(
        capture_address=new, sender="x@example.com", reason="rate_limit", count=3
    )
    page = admin_client.get("/admin/capture/smtprateevent/")
    assert page.status_code == 200 and b"rate_limit" in page.content
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(f"{url}add/").status_code == 200
