from __future__ import annotations

import pytest
from django.utils import timezone

from crm.models import Contact, ContactEmail
from crm.services import register_address_hook, unregister_address_hook
from tests.crm.api_helpers import crm_client
from tests.factories import make_contact, make_organization, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook_calls():
    calls: list[list[str]] = []
    register_address_hook(calls.append)
    yield calls
    unregister_address_hook(calls.append)


def test_create_contact_normalises_addresses_and_makes_the_first_primary():
    response = crm_client().post(
        "/api/v1/contacts/",
        {
            "first_name": "Ana",
            "emails": [{"address": " Ana@Example.COM "}, {"address": "ana@b\u00fccher.de"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["emails"] == [
        {"address": "ana@example.com", "is_primary": True},
        {"address": "ana@xn--bcher-kva.de", "is_primary": False},
    ]
    assert body["source"] == "api"


def test_marked_primary_wins_over_position():
    response = crm_client().post(
        "/api/v1/contacts/",
        {"emails": [{"address": "a@x.com"}, {"address": "b@x.com", "is_primary": True}]},
        format="json",
    )
    assert response.status_code == 201
    contact = Contact.objects.get(pk=response.json()["id"])
    assert contact.primary_email == "b@x.com"


def test_invalid_address_is_a_400_on_that_entry():
    response = crm_client().post(
        "/api/v1/contacts/",
        {"first_name": "A", "emails": [{"address": "ok@x.com"}, {"address": "not an address"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "address" in response.json()["emails"]["1"]
    assert Contact.objects.count() == 0


def test_two_primaries_or_a_duplicate_address_are_400():
    client = crm_client()
    two = [{"address": "a@x.com", "is_primary": True}, {"address": "b@x.com", "is_primary": True}]
    assert client.post("/api/v1/contacts/", {"emails": two}, format="json").status_code == 400
    dup = [{"address": "a@x.com"}, {"address": "A@X.com"}]
    response = client.post("/api/v1/contacts/", {"emails": dup}, format="json")
    assert response.status_code == 400
    assert "twice" in str(response.json()["emails"])


def test_unknown_fields_are_rejected_by_name():
    response = crm_client().post(
        "/api/v1/contacts/",
        {"first_name": "A", "firstname": "typo", "colour": "red"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"colour": ["Unknown field."], "firstname": ["Unknown field."]}


def test_unknown_field_inside_an_email_entry_is_rejected():
    response = crm_client().post(
        "/api/v1/contacts/", {"emails": [{"address": "a@x.com", "primary": True}]}, format="json"
    )
    assert response.status_code == 400
    assert "primary" in str(response.json()["emails"])


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"marketing": "perhaps"}, "marketing"),
        ({"organization": "acme"}, "organization"),
        ({"organization": 999999}, "organization"),
        ({"owner": [1]}, "owner"),
        ({"emails": "a@x.com"}, "emails"),
        ({"emails": [42]}, "emails"),
        ({"source": "telepathy"}, "source"),
        ({"first_name": {"nested": 1}}, "first_name"),
    ],
)
def test_wrong_types_are_400_with_field_errors(payload, field):
    response = crm_client().post("/api/v1/contacts/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_non_object_body_is_400_not_500():
    client = crm_client()
    assert client.post("/api/v1/contacts/", [1, 2], format="json").status_code == 400
    response = client.post("/api/v1/contacts/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_update_replaces_the_address_list_when_given_and_keeps_it_when_not():
    contact = make_contact(emails=("old@x.com", "keep@x.com"))
    client = crm_client()
    response = client.patch(f"/api/v1/contacts/{contact.pk}/", {"last_name": "New"}, format="json")
    assert response.status_code == 200
    assert len(response.json()["emails"]) == 2
    response = client.patch(
        f"/api/v1/contacts/{contact.pk}/",
        {"emails": [{"address": "keep@x.com"}, {"address": "new@x.com"}]},
        format="json",
    )
    assert response.status_code == 200
    assert set(
        ContactEmail.objects.filter(contact=contact).values_list("address", "is_primary")
    ) == {
        ("keep@x.com", True),
        ("new@x.com", False),
    }


def test_the_same_address_may_belong_to_two_contacts():
    make_contact(emails=("office@acme.com",))
    response = crm_client().post(
        "/api/v1/contacts/", {"emails": [{"address": "office@acme.com"}]}, format="json"
    )
    assert response.status_code == 201
    assert ContactEmail.objects.filter(address="office@acme.com").count() == 2


def test_email_filter_matches_primary_and_secondary_addresses():
    first = make_contact(emails=("shared@acme.com",))
    second = make_contact(emails=("own@acme.com", "shared@acme.com"))
    make_contact(emails=("other@acme.com",))
    response = crm_client().get("/api/v1/contacts/", {"email": "Shared@ACME.com"})
    assert response.status_code == 200
    assert {c["id"] for c in response.json()["results"]} == {first.pk, second.pk}


def test_bad_filter_values_are_400():
    client = crm_client()
    assert client.get("/api/v1/contacts/", {"email": "nope"}).status_code == 400
    assert client.get("/api/v1/contacts/", {"updated_after": "yesterday"}).status_code == 400
    assert client.get("/api/v1/contacts/", {"organization": "abc"}).status_code == 400


def test_filters_by_organization_owner_external_id_and_updated_after():
    org = make_organization()
    owner = make_user()
    a = make_contact(organization=org, owner=owner, external_id="crm-1")
    make_contact()
    client = crm_client()
    for params in ({"organization": org.pk}, {"owner": owner.pk}, {"external_id": "crm-1"}):
        assert [c["id"] for c in client.get("/api/v1/contacts/", params).json()["results"]] == [
            a.pk
        ]
    future = (timezone.now() + timezone.timedelta(hours=1)).isoformat()
    assert client.get("/api/v1/contacts/", {"updated_after": future}).json()["results"] == []


def test_search_matches_names():
    target = make_contact(first_name="Ingrid", last_name="Bergman")
    make_contact(first_name="Greta", last_name="Garbo")
    results = crm_client().get("/api/v1/contacts/", {"search": "bergm"}).json()["results"]
    assert [c["id"] for c in results] == [target.pk]


def test_cursor_pagination_walks_every_record_once():
    made = {make_contact().pk for _ in range(7)}
    client = crm_client()
    seen: list[int] = []
    url = "/api/v1/contacts/?page_size=3"
    pages = 0
    while url:
        body = client.get(url).json()
        seen += [c["id"] for c in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(made)
    assert "cursor=" in client.get("/api/v1/contacts/?page_size=3").json()["next"]


def test_upsert_creates_then_updates_by_external_id():
    client = crm_client()
    payload = {
        "external_id": "sf-003",
        "first_name": "Lin",
        "emails": [{"address": "lin@acme.com"}],
    }
    first = client.post("/api/v1/contacts/upsert/", payload, format="json")
    assert first.status_code == 201, first.content
    second = client.post(
        "/api/v1/contacts/upsert/", {"external_id": "sf-003", "last_name": "Wu"}, format="json"
    )
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    contact = Contact.objects.get(external_id="sf-003")
    assert (contact.first_name, contact.last_name, contact.primary_email) == (
        "Lin",
        "Wu",
        "lin@acme.com",
    )
    third = client.put(
        "/api/v1/contacts/upsert/", {"external_id": "sf-003", "marketing": True}, format="json"
    )
    assert third.status_code == 200
    assert Contact.objects.count() == 1


def test_upsert_without_external_id_is_400():
    client = crm_client()
    response = client.post("/api/v1/contacts/upsert/", {"first_name": "X"}, format="json")
    assert response.status_code == 400
    assert "external_id" in response.json()
    assert (
        client.post("/api/v1/contacts/upsert/", {"external_id": 5}, format="json").status_code
        == 400
    )


def test_creating_a_second_contact_with_the_same_external_id_is_400():
    make_contact(external_id="dup")
    response = crm_client().post("/api/v1/contacts/", {"external_id": "dup"}, format="json")
    assert response.status_code == 400
    assert "external_id" in response.json()


def test_address_hooks_hear_new_addresses_after_commit(
    hook_calls, django_capture_on_commit_callbacks
):
    contact = make_contact(emails=("known@x.com",))
    client = crm_client()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.patch(
            f"/api/v1/contacts/{contact.pk}/",
            {"emails": [{"address": "known@x.com"}, {"address": "Fresh@X.com"}]},
            format="json",
        )
        assert response.status_code == 200
        assert hook_calls == []  # nothing before commit
    assert callbacks
    assert hook_calls == [["fresh@x.com"]]


def test_address_hooks_are_not_called_when_the_write_fails(
    hook_calls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = crm_client().post(
            "/api/v1/contacts/",
            {"emails": [{"address": "a@x.com"}], "colour": "red"},
            format="json",
        )
    assert response.status_code == 400
    assert hook_calls == []


def test_delete_removes_the_contact():
    contact = make_contact(emails=("a@x.com",))
    assert crm_client().delete(f"/api/v1/contacts/{contact.pk}/").status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()
