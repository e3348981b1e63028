from __future__ import annotations

import pytest

from crm.models import Contact, Organization
from crm.services import register_address_hook, unregister_address_hook
from tests.crm.admin_helpers import import_csv, superuser_client
from tests.factories import make_contact, make_organization

pytestmark = pytest.mark.django_db


def test_contact_import_creates_contacts_with_primary_and_secondary_addresses(
    django_capture_on_commit_callbacks,
):
    calls: list[list[str]] = []
    register_address_hook(calls.append)
    try:
        client, _ = superuser_client()
        csv = "external_id,first_name,last_name,emails\nx-1,Ann,Lee,Ann@Acme.com;ann.lee@gmail.com\nx-2,Bo,Ng,bo@acme.com\n"
        with django_capture_on_commit_callbacks(execute=True):
            first, confirmed = import_csv(client, Contact, csv)
        assert first.status_code == 200
        assert confirmed is not None and confirmed.status_code == 302
    finally:
        unregister_address_hook(calls.append)
    ann = Contact.objects.get(external_id="x-1")
    assert ann.source == "import"
    assert set(ann.emails.values_list("address", "is_primary")) == {
        ("ann@acme.com", True),
        ("ann.lee@gmail.com", False),
    }
    assert sorted(a for call in calls for a in call) == [
        "ann.lee@gmail.com",
        "ann@acme.com",
        "bo@acme.com",
    ]


def test_import_with_a_bad_row_shows_the_row_error_and_imports_nothing():
    client, _ = superuser_client()
    csv = "first_name,last_name,emails\nGood,Row,good@acme.com\nBad,Row,not-an-address\n"
    first, confirmed = import_csv(client, Contact, csv)
    assert confirmed is None
    page = first.content.decode()
    assert "not a valid e-mail address" in page
    result = first.context["result"]
    assert result.has_validation_errors()
    assert [r.number for r in result.invalid_rows] == [2]
    assert not Contact.objects.exists()


def test_import_updates_by_external_id():
    make_contact(external_id="x-9", first_name="Old", emails=("old@acme.com",))
    client, _ = superuser_client()
    _, confirmed = import_csv(
        client, Contact, "external_id,first_name,emails\nx-9,New,new@acme.com;old@acme.com\n"
    )
    assert confirmed is not None
    contact = Contact.objects.get(external_id="x-9")
    assert contact.first_name == "New"
    assert contact.primary_email == "new@acme.com"
    assert Contact.objects.count() == 1


def test_organization_import_normalises_domains_and_reports_a_taken_one():
    make_organization(name="Globex", domains=("globex.com",))
    client, _ = superuser_client()
    _, confirmed = import_csv(
        client, Organization, "name,domains\nInitech,mail.initech.co.uk;initech.com\n"
    )
    assert confirmed is not None
    assert sorted(
        Organization.objects.get(name="Initech").domains.values_list("domain", flat=True)
    ) == [
        "initech.co.uk",
        "initech.com",
    ]
    first, confirmed = import_csv(client, Organization, "name,domains\nCopycat,globex.com\n")
    assert confirmed is None
    assert "already belongs to the organization" in first.content.decode()


def test_item_import_rejects_an_unknown_kind_per_row():
    client, _ = superuser_client()
    first, confirmed = import_csv(
        client, Contact.items.rel.related_model, "kind,title\ndeal,Fine\nopportunity,Bad\n"
    )
    assert confirmed is None
    result = first.context["result"]
    assert [r.number for r in result.invalid_rows] == [2]


def test_contact_export_has_an_emails_column_primary_first():
    make_contact(first_name="Exported", emails=("primary@acme.com", "second@acme.com"))
    client, _ = superuser_client()
    from django.contrib import admin

    formats = admin.site._registry[Contact].get_export_formats()
    index = next(i for i, f in enumerate(formats) if f().get_title() == "csv")
    response = client.post(
        "/admin/crm/contact/export/",
        {
            "format": str(index),
            "resource": "0",
            **{f"contactresource_{f}": "on" for f in ("id", "first_name", "emails")},
        },
    )
    assert response.status_code == 200, response.content[:500]
    text = response.content.decode()
    assert "primary@acme.com;second@acme.com" in text
