from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import ApiToken
from governance.audit import record_event
from governance.models import AuditEvent, NeverLogRule, OrgSettings
from tests.crm.api_helpers import crm_client, token_client
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def gov_client() -> APIClient:
    return token_client([ApiToken.Scope.GOVERNANCE_ADMIN])


def test_governance_endpoints_need_the_governance_scope():
    client = crm_client()
    for path in ("/api/v1/audit-events/", "/api/v1/never-log-rules/", "/api/v1/org-settings/"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "governance:admin" in response.json()["detail"]
    assert APIClient().get("/api/v1/audit-events/").status_code == 401


def test_session_users_must_be_compliance_officers():
    client = APIClient()
    client.force_login(make_user(is_staff=True, role="member"))
    assert client.get("/api/v1/audit-events/").status_code == 403
    client.force_login(make_user(is_staff=True, role="compliance"))
    assert client.get("/api/v1/audit-events/").status_code == 200


def test_audit_events_are_listed_newest_first_filterable_and_read_only():
    record_event("crm.contact.created", actor="x", object_id=1)
    newest = record_event("crm.contact.deleted", actor="x", object_id=1)
    client = gov_client()
    body = client.get("/api/v1/audit-events/").json()
    assert body["results"][0]["id"] == newest.pk
    filtered = client.get("/api/v1/audit-events/", {"action": "crm.contact.created"}).json()[
        "results"
    ]
    assert [e["action"] for e in filtered] == ["crm.contact.created"]
    assert (
        client.post("/api/v1/audit-events/", {"action": "forged"}, format="json").status_code == 405
    )
    assert client.delete(f"/api/v1/audit-events/{newest.pk}/").status_code == 405


def test_never_log_rules_are_normalised_unique_and_audited():
    client = gov_client()
    response = client.post(
        "/api/v1/never-log-rules/", {"kind": "address", "value": " HR@Example.COM "}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["value"] == "hr@example.com"
    domain = client.post(
        "/api/v1/never-log-rules/", {"kind": "domain", "value": "mail.lawfirm.co.uk"}, format="json"
    )
    assert domain.json()["value"] == "lawfirm.co.uk"
    again = client.post(
        "/api/v1/never-log-rules/", {"kind": "address", "value": "hr@example.com"}, format="json"
    )
    assert again.status_code == 400
    bad = client.post(
        "/api/v1/never-log-rules/", {"kind": "address", "value": "nope"}, format="json"
    )
    assert bad.status_code == 400 and "value" in bad.json()
    unknown = client.post(
        "/api/v1/never-log-rules/",
        {"kind": "domain", "value": "x.com", "scope": "all"},
        format="json",
    )
    assert unknown.json() == {"scope": ["Unknown field."]}
    assert NeverLogRule.objects.count() == 2
    rule_id = response.json()["id"]
    assert client.delete(f"/api/v1/never-log-rules/{rule_id}/").status_code == 204
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "channel"))
    assert actions == [
        ("governance.neverlogrule.created", "api"),
        ("governance.neverlogrule.created", "api"),
        ("governance.neverlogrule.deleted", "api"),
    ]


def test_org_settings_is_a_singleton_read_and_replaced_with_put():
    client = gov_client()
    body = client.get("/api/v1/org-settings/").json()
    assert body["auto_create_contacts"] == "sent"
    body.update(
        {
            "company_name": "Acme",
            "internal_domains": ["Acme.com", "acme.de"],
            "auto_create_contacts": "never",
        }
    )
    response = client.put("/api/v1/org-settings/", body, format="json")
    assert response.status_code == 200, response.content
    settings = OrgSettings.load()
    assert (settings.company_name, settings.internal_domains, settings.auto_create_contacts) == (
        "Acme",
        ["acme.com", "acme.de"],
        "never",
    )
    assert OrgSettings.objects.count() == 1
    assert AuditEvent.objects.filter(action="governance.orgsettings.updated").exists()


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"auto_create_contacts": "sometimes"}, "auto_create_contacts"),
        ({"internal_domains": "acme.com"}, "internal_domains"),
        ({"internal_domains": ["not a domain"]}, "internal_domains"),
        ({"thread_window_days": -3}, "thread_window_days"),
        ({"log_everything": True}, "log_everything"),
    ],
)
def test_org_settings_bad_input_is_400(payload, field):
    response = gov_client().patch("/api/v1/org-settings/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_the_database_refuses_a_second_org_wide_rule_for_the_same_value():
    from django.db import IntegrityError, transaction

    NeverLogRule.objects.create(kind="domain", value="lawfirm.co.uk")
    with pytest.raises(IntegrityError), transaction.atomic():
        NeverLogRule.objects.create(kind="domain", value="lawfirm.co.uk")
    # a personal rule for the same value is another rule
    NeverLogRule.objects.create(kind="domain", value="lawfirm.co.uk", user=make_user())
    assert NeverLogRule.objects.count() == 2
