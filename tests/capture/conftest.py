"""Fixtures shared by the capture tests."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken


@pytest.fixture
def api():
    """`api(user, scopes)`: a DRF client authenticated with a real token of that user."""

    def client_for(user, scopes=("capture:read", "capture:write")):
        _, key = ApiToken.issue(user=user, name="t", scopes=list(scopes))
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return c

    return client_for
