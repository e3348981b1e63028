from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory

from crm.models import (
    ApiToken,
    Contact,
    ContactEmail,
    Item,
    Organization,
    OrganizationDomain,
    Team,
    User,
    UserAddress,
)
from crm.services import register_address_hook, unregister_address_hook
from governance.models import AuditAnchor, AuditEvent, NeverLogRule, OrgSettings
from tests.crm.admin_helpers import superuser_client
from tests.factories import make_contact, make_organization, make_user

pytestmark = pytest.mark.django_db

ADMIN_MODELS = [
    User,
    Team,
    ApiToken,
    Organization,
    Contact,
    Item,
    OrgSettings,
    NeverLogRule,
    AuditEvent,
    AuditAnchor,
]


def inline_data(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


@pytest.fixture
def hook_calls():
    calls: list[list[str]] = []
    register_address_hook(calls.append)
    yield calls
    unregister_address_hook(calls.append)


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
def test_every_crm_and_governance_model_has_a_searchable_filterable_admin(model):
    model_admin = admin.site._registry[model]
    assert model_admin.list_display != ("__str__",)
    assert model_admin.search_fields
    assert model_admin.list_filter
    request = RequestFactory().get("/admin/")
    request.user = make_user(is_staff=True, is_superuser=True)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_every_changelist_and_add_page_renders():
    client, _ = superuser_client()
    make_contact(emails=("a@x.com",))
    for model in ADMIN_MODELS:
        opts = model._meta
        assert client.get(f"/admin/{opts.app_label}/{opts.model_name}/").status_code == 200, model
    for model in (User, Team, ApiToken, Organization, Contact, Item, NeverLogRule):
        opts = model._meta
        assert client.get(f"/admin/{opts.app_label}/{opts.model_name}/add/").status_code == 200, (
            model
        )


def test_contact_add_with_inline_addresses_normalises_and_tells_hooks_after_commit(
    hook_calls, django_capture_on_commit_callbacks
):
    client, _ = superuser_client()
    data = {"first_name": "Ada", "last_name": "Lovelace", "source": "manual"}
    data |= inline_data("emails", [{"address": " Ada@Example.COM"}, {"address": "ada@b.org"}])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/crm/contact/add/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    contact = Contact.objects.get(last_name="Lovelace")
    assert set(contact.emails.values_list("address", "is_primary")) == {
        ("ada@example.com", True),
        ("ada@b.org", False),
    }
    assert hook_calls == [["ada@b.org", "ada@example.com"]]


def test_contact_inline_rejects_a_bad_address_and_two_primaries():
    client, _ = superuser_client()
    base = {"first_name": "X", "source": "manual"}
    bad = client.post(
        "/admin/crm/contact/add/", base | inline_data("emails", [{"address": "nope"}])
    )
    assert bad.status_code == 200
    assert "Enter a valid e-mail address" in bad.content.decode()
    two = inline_data(
        "emails",
        [{"address": "a@x.com", "is_primary": "on"}, {"address": "b@x.com", "is_primary": "on"}],
    )
    response = client.post("/admin/crm/contact/add/", base | two)
    assert response.status_code == 200
    assert "Only one address can be the primary one." in response.content.decode()
    assert not Contact.objects.exists()


def test_switching_the_primary_address_in_the_inline_is_saved():
    contact = make_contact(emails=("first@x.com", "second@x.com"))
    rows = [
        {
            "id": str(e.pk),
            "contact": str(contact.pk),
            "address": e.address,
            "is_primary": "" if e.is_primary else "on",
        }
        for e in contact.emails.order_by("-is_primary")
    ]
    client, _ = superuser_client()
    data = {"first_name": contact.first_name, "last_name": contact.last_name, "source": "manual"}
    response = client.post(
        f"/admin/crm/contact/{contact.pk}/change/", data | inline_data("emails", rows, initial=2)
    )
    assert response.status_code == 302
    assert ContactEmail.objects.get(contact=contact, is_primary=True).address == "second@x.com"


def test_contact_changelist_search_finds_by_name_and_address():
    make_contact(first_name="Grace", last_name="Hopper", emails=("grace@navy.mil",))
    make_contact(first_name="Alan", last_name="Turing", emails=("alan@bletchley.uk",))
    client, _ = superuser_client()
    by_name = client.get("/admin/crm/contact/", {"q": "hopper"}).content.decode()
    assert "Grace Hopper" in by_name and "Alan Turing" not in by_name
    by_address = client.get("/admin/crm/contact/", {"q": "bletchley"}).content.decode()
    assert "Alan Turing" in by_address and "Grace Hopper" not in by_address


def test_organization_inline_stores_the_registrable_domain():
    client, _ = superuser_client()
    data = {"name": "Acme", "source": "manual"} | inline_data(
        "domains", [{"domain": "mail.Acme.co.uk"}]
    )
    assert client.post("/admin/crm/organization/add/", data).status_code == 302
    assert OrganizationDomain.objects.get().domain == "acme.co.uk"


def test_organization_inline_explains_a_domain_owned_by_another_org():
    make_organization(name="Globex", domains=("globex.com",))
    client, _ = superuser_client()
    data = {"name": "Copycat", "source": "manual"} | inline_data(
        "domains", [{"domain": "www.globex.com"}]
    )
    response = client.post("/admin/crm/organization/add/", data)
    assert response.status_code == 200
    assert "already belongs to the organization" in response.content.decode()
    assert "Globex" in response.content.decode()


def test_api_token_add_shows_the_secret_once_and_never_the_hash():
    client, _ = superuser_client()
    owner = make_user(username="integration")
    response = client.post(
        "/admin/crm/apitoken/add/",
        {
            "name": "CRM sync",
            "user": owner.pk,
            "service": "crm-sync",
            "scopes": ["crm:read", "crm:write"],
        },
    )
    # The secret is on the page answering the POST, never stored for a later page.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "shown only this once" in page
    secret = page.split('id="token-secret"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    assert secret not in str(response.cookies) and secret not in str(client.cookies)
    token = ApiToken.objects.get(name="CRM sync")
    assert token.key_hash == ApiToken.hash_key(secret)
    assert token.scopes == ["crm:read", "crm:write"]
    page = client.get(f"/admin/crm/apitoken/{token.pk}/change/").content.decode()
    assert token.key_hash not in page and secret not in page
    assert token.key_hash not in client.get("/admin/crm/apitoken/").content.decode()
    api = client.__class__()
    assert api.get("/api/v1/contacts/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_revoke_action_revokes_and_audits():
    client, _ = superuser_client()
    owner = make_user()
    from crm.services import issue_api_token

    token, secret = issue_api_token(user=owner, scopes=["crm:read"])
    response = client.post(
        "/admin/crm/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
        follow=True,
    )
    assert "Revoked 1 token(s)." in [str(m) for m in response.context["messages"]]
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(
        action="crm.apitoken.revoked", object_id=str(token.pk)
    ).exists()
    assert client.get("/api/v1/contacts/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_audit_admin_is_read_only_even_for_superusers():
    from governance.audit import record_event

    event = record_event("test.event", actor="tester")
    client, _ = superuser_client()
    assert client.get("/admin/governance/auditevent/").status_code == 200
    assert client.get(f"/admin/governance/auditevent/{event.pk}/change/").status_code == 200
    assert client.get("/admin/governance/auditevent/add/").status_code == 403
    assert (
        client.post(
            f"/admin/governance/auditevent/{event.pk}/change/", {"action": "forged"}
        ).status_code
        == 403
    )
    assert (
        client.post(f"/admin/governance/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.action == "test.event"


def test_user_admin_edits_role_team_and_addresses():
    client, _ = superuser_client()
    team = Team.objects.create(name="Sales EU")
    user = make_user(username="erin")
    page = client.get(f"/admin/crm/user/{user.pk}/change/").content.decode()
    assert 'name="role"' in page and 'name="addresses-TOTAL_FORMS"' in page
    data = {
        "username": "erin",
        "email": "erin@mailwarden-demo.com",
        "role": "manager",
        "team": team.pk,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
    } | inline_data("addresses", [{"address": "Erin.Alias@Mailwarden-Demo.com", "kind": "alias"}])
    response = client.post(f"/admin/crm/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    user.refresh_from_db()
    assert (user.role, user.team) == ("manager", team)
    assert UserAddress.objects.get(user=user).address == "erin.alias@mailwarden-demo.com"
