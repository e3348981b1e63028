from __future__ import annotations

import pytest

from crm.models import Contact
from governance.models import AuditEvent
from tests.crm.admin_helpers import import_csv, superuser_client
from tests.crm.api_helpers import crm_client
from tests.factories import make_contact, make_item, make_organization

pytestmark = pytest.mark.django_db


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_api_create_update_delete_write_events_with_the_token_as_actor():
    client = crm_client()
    created = client.post(
        "/api/v1/contacts/", {"first_name": "A", "emails": [{"address": "a@x.com"}]}, format="json"
    )
    pk = created.json()["id"]
    client.patch(f"/api/v1/contacts/{pk}/", {"last_name": "B"}, format="json")
    client.delete(f"/api/v1/contacts/{pk}/")
    (c,) = events("crm.contact.created")
    (u,) = events("crm.contact.updated")
    (d,) = events("crm.contact.deleted")
    for event in (c, u, d):
        assert event.object_id == str(pk)
        assert event.channel == "api"
        assert event.actor_type == "token"
        assert event.actor_label.startswith(f"token:{client.token.prefix}")
        assert event.actor_user_id == client.token.user_id
        assert event.address == "198.51.100.7"
    assert u.detail == {"fields": ["last_name"]}
    assert "a@x.com" not in str(c.detail)  # field names only, never values


def test_api_upsert_and_item_and_organization_writes_are_audited():
    client = crm_client()
    client.post(
        "/api/v1/organizations/upsert/", {"external_id": "o1", "name": "Org"}, format="json"
    )
    client.post(
        "/api/v1/organizations/upsert/", {"external_id": "o1", "name": "Org 2"}, format="json"
    )
    item = make_item()
    client.patch(f"/api/v1/items/{item.pk}/", {"status": "won"}, format="json")
    assert len(events("crm.organization.created")) == 1
    assert len(events("crm.organization.updated")) == 1
    assert events("crm.item.updated")[0].detail == {"fields": ["status"]}


def test_a_rejected_api_write_leaves_no_event():
    crm_client().post("/api/v1/contacts/", {"first_name": "A", "bogus": 1}, format="json")
    assert not AuditEvent.objects.exists()


def test_admin_add_change_delete_write_events_with_the_user_as_actor():
    client, user = superuser_client()
    org = make_organization()
    response = client.post(
        "/admin/crm/organization/add/",
        {
            "name": "Admin Org",
            "source": "manual",
            "domains-TOTAL_FORMS": "0",
            "domains-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    (created,) = events("crm.organization.created")
    assert (created.actor_type, created.actor_user_id, created.channel, created.address) == (
        "user",
        user.pk,
        "admin",
        "203.0.113.9",
    )
    assert (
        client.post(f"/admin/crm/organization/{org.pk}/delete/", {"post": "yes"}).status_code == 302
    )
    (deleted,) = events("crm.organization.deleted")
    assert deleted.object_id == str(org.pk)


def test_admin_contact_change_lists_changed_fields_and_inlines():
    contact = make_contact(first_name="Old")
    client, _ = superuser_client()
    response = client.post(
        f"/admin/crm/contact/{contact.pk}/change/",
        {
            "first_name": "New",
            "last_name": contact.last_name,
            "source": "manual",
            "emails-TOTAL_FORMS": "1",
            "emails-INITIAL_FORMS": "0",
            "emails-0-address": "new@x.com",
        },
    )
    assert response.status_code == 302
    (event,) = events("crm.contact.updated")
    assert event.detail == {"fields": ["emails", "first_name"]}


def test_import_writes_one_event_per_saved_row():
    client, user = superuser_client()
    _, confirmed = import_csv(client, Contact, "first_name,emails\nA,a@x.com\nB,b@x.com\n")
    assert confirmed is not None
    created = events("crm.contact.created")
    assert len(created) == 2
    assert {e.actor_user_id for e in created} == {user.pk}
    assert {e.detail["via"] for e in created} == {"import"}
    assert {e.address for e in created} == {"203.0.113.9"}
