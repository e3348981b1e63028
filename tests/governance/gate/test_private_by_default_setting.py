"""The "private by default" user setting through GET/PATCH /api/v1/me/settings/."""

from __future__ import annotations

import pytest

from governance.models import UserSettings
from tests.crm.api_helpers import token_client
from tests.factories import make_user, set_org_settings

pytestmark = pytest.mark.django_db
URL = "/api/v1/me/settings/"


def test_a_user_turns_private_by_default_on_and_back_to_the_default():
    user = make_user()
    client = token_client(["capture:read", "capture:write"], user=user)
    assert client.get(URL).json()["private_by_default"] == {
        "value": False,
        "locked": False,
        "choice": None,
    }
    body = client.patch(URL, {"private_by_default": True}, format="json").json()
    assert body["private_by_default"]["value"] is True
    assert UserSettings.objects.get(user=user).private_by_default is True
    body = client.patch(URL, {"private_by_default": None}, format="json").json()
    assert body["private_by_default"] == {"value": False, "locked": False, "choice": None}


def test_an_enforced_org_default_locks_private_by_default():
    set_org_settings(private_by_default=True, enforce_private_by_default=True)
    client = token_client(["capture:read", "capture:write"], user=make_user())
    assert client.get(URL).json()["private_by_default"]["locked"] is True
    response = client.patch(URL, {"private_by_default": False}, format="json")
    assert response.status_code == 400
    assert "private_by_default" in response.json()


def test_a_non_boolean_is_a_400():
    client = token_client(["capture:read", "capture:write"], user=make_user())
    response = client.patch(URL, {"private_by_default": "often"}, format="json")
    assert response.status_code == 400 and "private_by_default" in response.json()
