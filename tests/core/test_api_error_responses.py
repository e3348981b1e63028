"""The error answers of the API: one body shape, documented per operation in the OpenAPI
schema (core.api.AutoSchema), and every documented status really answered by some request."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.test import Client
from rest_framework.test import APIClient

import capture.intake
from crm.auth import TokenRateThrottle
from crm.models import ApiToken
from tests.factories import make_capture_address, make_mailbox, make_user

pytestmark = pytest.mark.django_db

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture
def schema() -> dict:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def codes(op: dict) -> set[int]:
    return {int(code) for code in op["responses"]}


def test_the_schema_validates_and_generates_without_a_warning(tmp_path):
    out = tmp_path / "schema.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
        "--file", str(out), stderr=StringIO(),
    )  # fmt: skip
    assert json.loads(out.read_text())["components"]["schemas"]["Error"]["type"] == "object"


def test_every_error_response_has_the_one_error_body(schema):
    errors = 0
    for path, method, op in operations(schema):
        for code, response in op["responses"].items():
            if int(code) >= 400:
                errors += 1
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": ERROR_REF}, (method, path, code)
                assert response["description"], (method, path, code)
    assert errors > 100


# One object, a short admin-made list, a preview: no cursor, so no 404 for a bad one.
UNPAGINATED = {
    "/api/v1/org-settings/",
    "/api/v1/me/settings/",
    "/api/v1/categories/",
    "/api/v1/link-rules/item-backfill/",
    "/api/v1/retention-policies/",
    "/api/v1/purge-runs/next/",
}


def test_operations_document_the_errors_they_can_answer(schema):
    for path, method, op in operations(schema):
        found = codes(op)
        where = (method, path, sorted(found))
        assert {401, 403, 429} <= found, where  # every endpoint needs a token or a login
        if "{id}" in path:
            assert 404 in found, where
        if "requestBody" in op:
            assert {400, 415} <= found, where
        else:
            assert 415 not in found, where
        if method == "get" and not path.endswith("}/") and path not in UNPAGINATED:
            assert 404 in found, where  # a list: an invalid cursor
    assert schema["paths"]["/api/v1/org-settings/"]["get"]["responses"].keys() >= {"401", "403"}
    assert "404" not in schema["paths"]["/api/v1/org-settings/"]["get"]["responses"]


def test_views_declare_the_errors_only_they_answer(schema):
    paths = schema["paths"]
    assert {400, 413, 415, 503} <= codes(paths["/api/v1/captures/"]["post"])
    assert 409 in codes(paths["/api/v1/capture-addresses/{id}/rotate/"]["post"])
    assert 409 in codes(paths["/api/v1/mailboxes/{id}/sync/"]["post"])
    assert 409 not in codes(paths["/api/v1/contacts/"]["post"])
    assert 413 not in codes(paths["/api/v1/contacts/"]["post"])
    # Actions that read no body document none, and so no 400/415 either.
    rotate = paths["/api/v1/capture-addresses/{id}/rotate/"]["post"]
    assert "requestBody" not in rotate and not {400, 415} & codes(rotate)


def token_client(*scopes: str, user=None) -> APIClient:
    _, key = ApiToken.issue(user=user or make_user(), name="t", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def answer_400():
    return token_client("crm:write").post("/api/v1/contacts/", {"firstname": "A"}, format="json")


def answer_401():
    return APIClient().get("/api/v1/contacts/")


def answer_403():
    return token_client("crm:read").post("/api/v1/contacts/", {}, format="json")


def answer_404():
    return token_client("crm:read").get("/api/v1/contacts/abc/")


def answer_409():
    user = make_user()
    address = make_capture_address(user, active=False)
    client = token_client("capture:read", "capture:write", user=user)
    return client.post(f"/api/v1/capture-addresses/{address.pk}/rotate/")


def answer_413(settings, mail_fixture):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 200
    return token_client("capture:write").post(
        "/api/v1/captures/", data=mail_fixture("draft.eml"), content_type="message/rfc822"
    )


def answer_415():
    return token_client("crm:write").post(
        "/api/v1/contacts/", data="first_name=A", content_type="text/plain"
    )


def answer_429(monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "rate", "1/minute", raising=False)
    client = token_client("crm:read")
    assert client.get("/api/v1/contacts/").status_code == 200
    return client.get("/api/v1/contacts/")


def answer_503(monkeypatch, mail_fixture):
    def broken(*args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(capture.intake, "insert_raw_rows", broken)
    return token_client("capture:write").post(
        "/api/v1/captures/", data=mail_fixture("draft.eml"), content_type="message/rfc822"
    )


def answer_502():
    user = make_user()
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = make_mailbox(user, host="127.0.0.1", port=port, security="none")
    client = token_client("capture:read", "capture:write", user=user)
    return client.post(f"/api/v1/mailboxes/{mailbox.pk}/reconcile/", {}, format="json")


ANSWERS = {
    400: answer_400,
    401: answer_401,
    403: answer_403,
    404: answer_404,
    409: answer_409,
    413: answer_413,
    415: answer_415,
    429: answer_429,
    502: answer_502,
    503: answer_503,
}


def test_every_documented_error_code_has_a_request_here_that_answers_it(schema):
    documented = {c for _, _, op in operations(schema) for c in codes(op) if c >= 400}
    assert documented == set(ANSWERS)


@pytest.mark.parametrize("code", sorted(ANSWERS))
def test_each_documented_error_is_really_answered_with_the_error_body(
    code, settings, monkeypatch, mail_fixture
):
    answer = ANSWERS[code]
    kwargs = {"settings": settings, "monkeypatch": monkeypatch, "mail_fixture": mail_fixture}
    names = answer.__code__.co_varnames[: answer.__code__.co_argcount]
    response = answer(**{name: kwargs[name] for name in names})
    assert response.status_code == code, response.content
    body = response.json()
    assert isinstance(body, dict) and body
    if code == 400:
        assert body == {"firstname": ["Unknown field."]}
    else:
        assert isinstance(body["detail"], str) and body["detail"]
