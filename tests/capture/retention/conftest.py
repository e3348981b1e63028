from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken, User
from tests.factories import make_user


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(db) -> User:
    return make_user(
        role=User.Role.ADMIN, is_staff=True, is_superuser=True, email="boss@example.org"
    )


@pytest.fixture
def api_client_admin(admin_user) -> APIClient:
    _, key = ApiToken.issue(
        user=admin_user, name="retention", scopes=[ApiToken.Scope.GOVERNANCE_ADMIN.value]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def admin_client_logged_in(admin_user, client):
    client.force_login(admin_user)
    return client
