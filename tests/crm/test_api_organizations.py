from __future__ import annotations

import pytest

from crm.models import Organization, OrganizationDomain
from tests.crm.api_helpers import crm_client
from tests.factories import make_organization

pytestmark = pytest.mark.django_db


def test_domains_are_stored_as_registrable_domains():
    response = crm_client().post(
        "/api/v1/organizations/",
        {
            "name": "Acme UK",
            "domains": ["mail.acme.co.uk", "https://www.Acme-Group.com/about", "ops@acme.de"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["domains"] == ["acme-group.com", "acme.co.uk", "acme.de"]


def test_a_domain_of_another_organization_is_a_400_naming_it():
    other = make_organization(name="Globex", domains=("globex.com",))
    response = crm_client().post(
        "/api/v1/organizations/",
        {"name": "Copycat", "domains": ["sales.globex.com"]},
        format="json",
    )
    assert response.status_code == 400
    message = str(response.json()["domains"])
    assert "globex.com" in message and "Globex" in message and str(other.pk) in message
    assert not Organization.objects.filter(name="Copycat").exists()


@pytest.mark.parametrize("bad", ["gmail.com", "co.uk", "not a domain", "", "localhost"])
def test_free_mail_public_suffix_and_garbage_domains_are_400(bad):
    response = crm_client().post(
        "/api/v1/organizations/", {"name": "X", "domains": [bad]}, format="json"
    )
    assert response.status_code == 400
    assert "domains" in response.json()


def test_updating_domains_replaces_the_list_and_may_keep_its_own():
    org = make_organization(domains=("acme.com", "acme.fr"))
    response = crm_client().patch(
        f"/api/v1/organizations/{org.pk}/", {"domains": ["www.acme.com", "acme.de"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert set(
        OrganizationDomain.objects.filter(organization=org).values_list("domain", flat=True)
    ) == {
        "acme.com",
        "acme.de",
    }


def test_domain_filter_uses_the_registrable_domain():
    org = make_organization(domains=("initech.co.uk",))
    make_organization(domains=("other.com",))
    results = (
        crm_client()
        .get("/api/v1/organizations/", {"domain": "eu.mail.initech.co.uk"})
        .json()["results"]
    )
    assert [o["id"] for o in results] == [org.pk]


def test_organization_upsert_by_external_id():
    client = crm_client()
    created = client.post(
        "/api/v1/organizations/upsert/",
        {"external_id": "acc-9", "name": "Umbrella", "domains": ["umbrella.com"]},
        format="json",
    )
    assert created.status_code == 201
    updated = client.post(
        "/api/v1/organizations/upsert/",
        {"external_id": "acc-9", "name": "Umbrella Corp"},
        format="json",
    )
    assert updated.status_code == 200
    org = Organization.objects.get(external_id="acc-9")
    assert org.name == "Umbrella Corp"
    assert list(org.domains.values_list("domain", flat=True)) == ["umbrella.com"]


def test_organization_unknown_field_is_400():
    response = crm_client().post(
        "/api/v1/organizations/", {"name": "X", "domain": "x.com"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"domain": ["Unknown field."]}


def test_search_by_name():
    target = make_organization(name="Wayne Enterprises")
    make_organization(name="Stark Industries")
    results = crm_client().get("/api/v1/organizations/", {"search": "wayne"}).json()["results"]
    assert [o["id"] for o in results] == [target.pk]
