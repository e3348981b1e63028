"""Admin-defined categories: the list, the add-in's choice (unknown: 400), editing a stored
message's categories (owner and admins, audited), the admin pages, the data migration."""

from __future__ import annotations

import base64
import importlib

import pytest
from django.apps import apps
from django.test import Client

from capture.models import Category, EmailMessage, RawMessage
from governance.models import AuditEvent
from tests.capture.timeline.conftest import make_thread
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def pricing():
    return Category.objects.create(name="pricing", order=1)


@pytest.fixture
def retired():
    return Category.objects.create(name="retired", active=False)


def post_addin(client, mail_fixture, **options):
    body = {"mime_base64": base64.b64encode(mail_fixture("draft.eml")).decode(), **options}
    return client.post("/api/v1/captures/", body, format="json")


# --- the list ------------------------------------------------------------------------------


def test_anyone_with_capture_read_lists_the_categories_in_order(api, pricing, retired):
    Category.objects.create(name="a first", order=0)
    response = api(make_user(), scopes=("capture:read",)).get("/api/v1/categories/")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()] == ["a first", "retired", "pricing"]
    active = api(make_user()).get("/api/v1/categories/?active=true").json()
    assert [c["name"] for c in active] == ["a first", "pricing"]


def test_a_governance_admin_token_creates_a_category_and_it_is_audited(api):
    client = api(make_user(role="admin"), scopes=("governance:admin",))
    response = client.post("/api/v1/categories/", {"name": " renewal ", "order": 3}, format="json")
    assert response.status_code == 201, response.content
    category = Category.objects.get()
    assert (category.name, category.order, category.active) == ("renewal", 3, True)
    event = AuditEvent.objects.get(action="capture.category.created")
    assert event.object_id == str(category.pk)


def test_creating_a_category_needs_the_governance_admin_scope(api):
    client = api(make_user(role="admin"), scopes=("capture:read", "capture:write"))
    assert client.post("/api/v1/categories/", {"name": "x"}, format="json").status_code == 403
    assert not Category.objects.exists()


def test_a_duplicate_or_blank_name_is_a_400(api, pricing):
    client = api(make_user(role="admin"), scopes=("governance:admin",))
    assert client.post("/api/v1/categories/", {"name": "pricing"}, format="json").status_code == 400
    assert client.post("/api/v1/categories/", {"name": "  "}, format="json").status_code == 400
    assert Category.objects.count() == 1


def test_deactivating_is_audited_and_a_name_cannot_change(api, pricing):
    client = api(make_user(role="admin"), scopes=("governance:admin",))
    response = client.post(f"/api/v1/categories/{pricing.pk}/deactivate/")
    assert response.status_code == 200
    pricing.refresh_from_db()
    assert pricing.active is False
    assert AuditEvent.objects.filter(action="capture.category.deactivated").count() == 1
    renamed = client.patch(f"/api/v1/categories/{pricing.pk}/", {"name": "x"}, format="json")
    assert renamed.status_code == 400
    reordered = client.patch(f"/api/v1/categories/{pricing.pk}/", {"order": 9}, format="json")
    assert reordered.json()["order"] == 9


# --- the add-in ----------------------------------------------------------------------------


def test_the_addin_choosing_an_unknown_or_inactive_category_is_a_400(
    api, mail_fixture, pricing, retired
):
    client = api(make_user())
    unknown = post_addin(client, mail_fixture, categories=["pricing", "made up"])
    assert unknown.status_code == 400
    assert "made up" in str(unknown.json()["categories"])
    inactive = post_addin(client, mail_fixture, categories=["retired"])
    assert inactive.status_code == 400
    assert RawMessage.objects.count() == 0
    assert post_addin(client, mail_fixture, categories=["pricing"]).status_code == 202


# --- a stored message's categories ---------------------------------------------------------


def email_url(email) -> str:
    return f"/api/v1/emails/{email.pk}/categories/"


def test_the_thread_owner_sets_a_messages_categories_and_it_is_audited(api, pricing):
    owner = make_user()
    email = make_thread(owner=owner).messages.get()
    response = api(owner).patch(email_url(email), {"categories": ["pricing"]}, format="json")
    assert response.status_code == 200, response.content
    email.refresh_from_db()
    assert email.categories == ["pricing"]
    event = AuditEvent.objects.get(action="email.categories_changed")
    assert event.detail["added"] == [pricing.pk]
    assert "pricing" not in str(event.detail)


def test_another_member_who_sees_the_mail_cannot_change_its_categories(api, pricing):
    owner, colleague = make_user(), make_user()
    email = make_thread(owner=owner).messages.get()
    from capture.models import Participant

    Participant.objects.create(email=email, role="to", address="c@x.example", user=colleague)
    response = api(colleague).patch(email_url(email), {"categories": ["pricing"]}, format="json")
    assert response.status_code == 403
    assert api(make_user()).patch(email_url(email), {"categories": []}).status_code == 404


def test_an_admin_changes_any_messages_categories(api, pricing):
    email = make_thread(owner=make_user()).messages.get()
    client = api(make_user(role="admin"))
    assert (
        client.patch(email_url(email), {"categories": ["pricing"]}, format="json").status_code
        == 200
    )


def test_an_inactive_category_stays_on_a_message_but_cannot_be_added(api, pricing, retired):
    owner = make_user()
    email = make_thread(owner=owner).messages.get()
    EmailMessage.objects.filter(pk=email.pk).update(categories=["retired"])
    client = api(owner)
    kept = client.patch(email_url(email), {"categories": ["retired", "pricing"]}, format="json")
    assert kept.status_code == 200
    other = make_thread(owner=owner).messages.get()
    refused = client.patch(email_url(other), {"categories": ["retired"]}, format="json")
    assert refused.status_code == 400
    other.refresh_from_db()
    assert other.categories == []


def test_bad_category_bodies_are_400(api):
    owner = make_user()
    email = make_thread(owner=owner).messages.get()
    client = api(owner)
    assert (
        client.patch(email_url(email), {"categories": "pricing"}, format="json").status_code == 400
    )
    assert client.patch(email_url(email), {}, format="json").status_code == 400


# --- the admin -----------------------------------------------------------------------------


def admin_client() -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True, role="admin"))
    return client


def test_the_category_admin_creates_and_deactivates_through_the_service(pricing):
    client = admin_client()
    assert client.get("/admin/capture/category/").status_code == 200
    added = client.post(
        "/admin/capture/category/add/", {"name": "quote", "active": "on", "order": 2}
    )
    assert added.status_code == 302
    assert AuditEvent.objects.filter(action="capture.category.created").count() == 1
    client.post(
        "/admin/capture/category/",
        {"action": "deactivate", "_selected_action": [pricing.pk]},
    )
    pricing.refresh_from_db()
    assert pricing.active is False
    assert AuditEvent.objects.filter(action="capture.category.deactivated").count() == 1


def test_the_email_admin_edits_a_messages_categories_audited(pricing):
    email = make_thread().messages.get()
    client = admin_client()
    page = client.get(f"/admin/capture/emailmessage/{email.pk}/change/")
    assert page.status_code == 200
    assert 'value="pricing"' in page.content.decode()
    data = {"category_names": ["pricing"]}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
    saved = client.post(f"/admin/capture/emailmessage/{email.pk}/change/", data)
    assert saved.status_code == 302, saved.content[:2000]
    email.refresh_from_db()
    assert email.categories == ["pricing"]
    assert AuditEvent.objects.filter(action="email.categories_changed").count() == 1


# --- the data migration --------------------------------------------------------------------


def test_the_migration_creates_a_category_for_every_name_already_stored():
    first = make_thread().messages.get()
    second = make_thread().messages.get()
    EmailMessage.objects.filter(pk=first.pk).update(categories=["pricing", "Q2"])
    EmailMessage.objects.filter(pk=second.pk).update(categories=["Q2", "renewal"])
    Category.objects.create(name="renewal", active=False)
    migration = importlib.import_module("capture.migrations.0008_categories_timeline")
    migration.create_categories_from_stored_names(apps, None)
    names = dict(Category.objects.values_list("name", "active"))
    assert names == {"pricing": True, "Q2": True, "renewal": False}


def test_an_unknown_field_in_a_categories_body_is_a_400_naming_it(api):
    owner = make_user()
    email = make_thread(owner=owner).messages.get()
    response = api(owner).patch(
        email_url(email), {"categories": [], "labels": ["x"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"labels": ["Unknown field."]}
