from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_openapi_schema_is_valid_json_and_lists_the_crm_paths():
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/contacts/",
        "/api/v1/contacts/upsert/",
        "/api/v1/organizations/",
        "/api/v1/items/",
        "/api/v1/audit-events/",
        "/api/v1/never-log-rules/",
        "/api/v1/org-settings/",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["tokenAuth"]["scheme"] == "bearer"


def test_interactive_docs_page_answers():
    assert Client().get("/api/docs/").status_code == 200
