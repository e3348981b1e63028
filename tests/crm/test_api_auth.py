from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import ApiToken
from tests.crm.api_helpers import crm_client, token_client
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def test_request_without_token_is_401_with_a_bearer_challenge():
    response = APIClient().get("/api/v1/contacts/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer mw_not-a-real-token")
    assert client.get("/api/v1/contacts/").status_code == 401


def test_revoked_token_is_401():
    client = crm_client()
    ApiToken.objects.filter(pk=client.token.pk).update(revoked_at=timezone.now())
    assert client.get("/api/v1/contacts/").status_code == 401


def test_read_scope_can_list_but_not_write():
    make_contact(emails=("a@example.com",))
    client = token_client([ApiToken.Scope.CRM_READ])
    assert client.get("/api/v1/contacts/").status_code == 200
    response = client.post("/api/v1/contacts/", {"first_name": "X"}, format="json")
    assert response.status_code == 403
    assert "crm:write" in response.json()["detail"]


def test_token_without_crm_scope_is_403_on_every_crm_endpoint():
    client = token_client([ApiToken.Scope.CAPTURE_WRITE])
    for path in ("/api/v1/contacts/", "/api/v1/organizations/", "/api/v1/items/"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "crm:read" in response.json()["detail"]


def test_service_token_acts_as_its_user():
    service_user = make_user(username="crm-sync")
    client = token_client([ApiToken.Scope.CRM_READ], user=service_user, service="salesforce-sync")
    assert client.get("/api/v1/items/").status_code == 200
    client.token.refresh_from_db()
    assert client.token.service == "salesforce-sync"
    assert client.token.last_used is not None


def test_session_login_needs_staff():
    member = make_user(password="pw-member-123")
    client = APIClient()
    client.force_login(member)
    assert client.get("/api/v1/contacts/").status_code == 403
    staff = make_user(is_staff=True)
    client.force_login(staff)
    assert client.get("/api/v1/contacts/").status_code == 200
