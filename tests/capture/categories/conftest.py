from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api():
    def client_for(user, scopes=("capture:read", "capture:write")):
        _, key = ApiToken.issue(user=user, name="t", scopes=list(scopes))
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return c

    return client_for
