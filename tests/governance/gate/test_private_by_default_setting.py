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


def test_the_org_settings_api_sets_the_gates_settings_and_cleans_the_tags():
    client = token_client(["governance:admin"])
    response = client.patch(
        "/api/v1/org-settings/",
        {
            "private_subject_tags": [" [HR] ", "[HR]", "#confidential"],
            "private_mail": "skip",
            "no_basis_mail": "skip",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["private_subject_tags"] == ["[HR]", "#confidential"]
    assert (body["private_mail"], body["no_basis_mail"]) == ("skip", "skip")
    bad = client.patch(
        "/api/v1/org-settings/",
        {"private_subject_tags": "[hr]", "private_mail": "sometimes"},
        format="json",
    )
    assert bad.status_code == 400
    assert {"private_subject_tags", "private_mail"} <= set(bad.json())
