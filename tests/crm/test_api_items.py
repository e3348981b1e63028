from __future__ import annotations

import pytest

from crm.models import Item
from tests.crm.api_helpers import crm_client
from tests.factories import make_contact, make_item, make_organization

pytestmark = pytest.mark.django_db


def test_create_item_with_kind_and_contacts():
    a, b = make_contact(), make_contact()
    org = make_organization()
    response = crm_client().post(
        "/api/v1/items/",
        {
            "kind": "ticket",
            "title": "Login broken",
            "contacts": [a.pk, b.pk],
            "organization": org.pk,
            "external_ref": "TCK-1234",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "ticket" and body["status"] == "open"
    assert sorted(body["contacts"]) == sorted([a.pk, b.pk])


def test_closing_an_item_sets_its_closed_time():
    item = make_item(kind="deal")
    response = crm_client().patch(f"/api/v1/items/{item.pk}/", {"status": "won"}, format="json")
    assert response.status_code == 200
    assert response.json()["closed_at"] is not None


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"kind": "opportunity", "title": "x"}, "kind"),
        ({"kind": "deal", "title": "x", "status": "pending"}, "status"),
        ({"kind": "deal", "title": "x", "contacts": [987654]}, "contacts"),
        ({"kind": "deal", "title": "x", "contacts": "1,2"}, "contacts"),
        ({"kind": "deal", "title": "x", "value": "lots"}, "value"),
        ({"kind": "deal"}, "title"),
        ({"title": "x"}, "kind"),
        ({"kind": "deal", "title": "x", "stage_name": "y"}, "stage_name"),
    ],
)
def test_bad_item_input_is_400_on_the_field(payload, field):
    response = crm_client().post("/api/v1/items/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_filters_by_kind_status_organization_and_external_ref():
    org = make_organization()
    deal = make_item(kind="deal", organization=org, external_ref="PO-55012")
    ticket = make_item(kind="ticket", status="closed")
    client = crm_client()

    def ids(params):
        response = client.get("/api/v1/items/", params)
        assert response.status_code == 200
        return [i["id"] for i in response.json()["results"]]

    assert ids({"kind": "deal"}) == [deal.pk]
    assert ids({"status": "closed"}) == [ticket.pk]
    assert ids({"organization": org.pk}) == [deal.pk]
    assert ids({"external_ref": "PO-55012"}) == [deal.pk]
    assert client.get("/api/v1/items/", {"kind": "opportunity"}).status_code == 400


def test_contact_filter_lists_a_contacts_items():
    contact = make_contact()
    linked = make_item(contacts=(contact,))
    make_item()
    assert [
        i["id"]
        for i in crm_client().get("/api/v1/items/", {"contact": contact.pk}).json()["results"]
    ] == [linked.pk]


def test_upsert_key_is_kind_plus_external_id():
    client = crm_client()
    deal = client.post(
        "/api/v1/items/upsert/",
        {"kind": "deal", "external_id": "42", "title": "Deal"},
        format="json",
    )
    ticket = client.post(
        "/api/v1/items/upsert/",
        {"kind": "ticket", "external_id": "42", "title": "T"},
        format="json",
    )
    assert (deal.status_code, ticket.status_code) == (201, 201)
    again = client.post(
        "/api/v1/items/upsert/",
        {"kind": "deal", "external_id": "42", "status": "lost"},
        format="json",
    )
    assert again.status_code == 200
    assert again.json()["id"] == deal.json()["id"]
    assert Item.objects.get(kind="deal", external_id="42").status == "lost"
    assert Item.objects.count() == 2


def test_upsert_without_kind_is_400():
    response = crm_client().post(
        "/api/v1/items/upsert/", {"external_id": "42", "title": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "kind" in response.json()


def test_duplicate_kind_and_external_id_on_create_is_400():
    make_item(kind="lead", external_id="L-1")
    response = crm_client().post(
        "/api/v1/items/", {"kind": "lead", "external_id": "L-1", "title": "again"}, format="json"
    )
    assert response.status_code == 400
    assert "external_id" in response.json()
