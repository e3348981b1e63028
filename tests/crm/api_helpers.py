"""Plain helpers for API tests: a DRF client authenticated with a real token."""

from __future__ import annotations

from rest_framework.test import APIClient

from crm.models import ApiToken, User
from crm.services import issue_api_token
from tests.factories import make_user


def token_client(scopes: list[str], *, user: User | None = None, service: str = "") -> APIClient:
    """An APIClient sending `Authorization: Bearer <secret>`; `.token` is the ApiToken."""
    user = user or make_user()
    token, secret = issue_api_token(user=user, scopes=scopes, service=service)
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    client.token = token  # type: ignore[attr-defined]
    client.secret = secret  # type: ignore[attr-defined]
    return client


def crm_client(**kwargs) -> APIClient:
    return token_client([ApiToken.Scope.CRM_READ, ApiToken.Scope.CRM_WRITE], **kwargs)
