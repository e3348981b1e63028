from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken


@pytest.fixture
def api():
    """An API client for a user with a token of the given scopes."""

    def client_for(user, scopes=("capture:read",)):
        _, key = ApiToken.issue(user=user, name="t", scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return client_for
