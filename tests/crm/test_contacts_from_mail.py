"""crm owns its rows: contacts for addresses first seen in captured mail are created by one
crm.services function, in bulk, audited under crm's action name, with the address hooks told."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from crm.models import Contact, ContactEmail
from crm.services import (
    CONTACT_CREATED,
    MailContact,
    create_contacts_from_mail,
    register_address_hook,
    reserve_contact_ids,
    split_name,
    unregister_address_hook,
)
from governance.models import AuditEvent
from tests.factories import make_organization, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_of_contacts_is_created_in_a_constant_number_of_statements():
    owner = make_user()
    org = make_organization(name="Globex", domains=("globex.co.uk",))
    specs = [
        MailContact(f"buyer{i}@globex.co.uk", f"Buyer {i}", org.pk, owner.pk) for i in range(40)
    ]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        contacts = create_contacts_from_mail(specs)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3  # contacts, their addresses, their audit events
    assert [c.pk for c in contacts] == [s.id for s in specs]
    assert Contact.objects.filter(source=Contact.Source.CAPTURE, marketing=False).count() == 40
    assert set(ContactEmail.objects.values_list("address", flat=True)) == {s.address for s in specs}
    assert all(e.is_primary for e in ContactEmail.objects.all())
    assert Contact.objects.get(pk=specs[3].id).owner_id == owner.pk
    assert AuditEvent.objects.filter(action=CONTACT_CREATED).count() == 40


def test_the_address_hooks_hear_of_the_new_addresses_after_commit_only():
    told: list[list[str]] = []
    register_address_hook(told.append)
    try:
        with transaction.atomic():
            create_contacts_from_mail([MailContact("ann@acme.test", "Ann")])
            assert told == []
        assert told == [["ann@acme.test"]]
    finally:
        unregister_address_hook(told.append)


@pytest.mark.postgres
def test_reserved_ids_are_the_ids_the_contacts_get():
    ids = reserve_contact_ids(3)
    assert len(set(ids)) == 3
    specs = [MailContact(f"p{i}@acme.test", id=cid) for i, cid in enumerate(ids)]
    create_contacts_from_mail(specs)
    assert sorted(Contact.objects.values_list("pk", flat=True)) == sorted(ids)


def test_display_names_split_into_first_and_last():
    assert split_name('"Buyer, Tom"') == ("Tom", "Buyer")
    assert split_name("Jane Q. Doe") == ("Jane Q.", "Doe")
    assert split_name("Cher") == ("Cher", "")
    assert split_name("") == ("", "")
