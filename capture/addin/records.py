"""Contacts created from the add-in's read pane: the address the mail shows, its display name,
and the organization its domain maps to (an existing one, or a new one with that domain)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from capture.addin.lookup import internal_domains, organization_name
from crm.addresses import is_free_mail_domain, registrable_domain, split_address
from crm.models import Contact, ContactEmail, Organization, OrganizationDomain, User
from crm.services import (
    contact_addresses_added,
    record_crm_change,
    set_organization_domains,
    split_name,
)


def organization_for_domain(
    address: str, *, create: bool, user: User, actor: Any, address_of_client: str = ""
) -> Organization | None:
    """The organization the address's registrable domain maps to; made when `create` and the
    domain is neither free mail nor our own."""
    domain = registrable_domain(split_address(address)[1])
    found = OrganizationDomain.objects.select_related("organization").filter(domain=domain).first()
    if found is not None:
        return found.organization
    if not create or is_free_mail_domain(domain) or domain in internal_domains():
        return None
    org = Organization.objects.create(
        name=organization_name(domain), owner=user, source=Organization.Source.API
    )
    set_organization_domains(org, [domain])
    record_crm_change(
        "created", org, actor=actor, channel="api", address=address_of_client,
        fields=["name", "domains"], detail={"source": "addin"},
    )  # fmt: skip
    return org


def create_contact(
    *,
    address: str,
    name: str,
    user: User,
    organization: Organization | None,
    create_organization: bool,
    actor: Any,
    client: str = "",
) -> Contact:
    """A contact for `address` owned by the user, not a marketing contact (HubSpot's rule for
    contacts made from mail), audited like every CRM change."""
    with transaction.atomic():
        if organization is None:
            organization = organization_for_domain(
                address, create=create_organization, user=user, actor=actor,
                address_of_client=client,
            )  # fmt: skip
        first, last = split_name(name)
        contact = Contact.objects.create(
            first_name=first,
            last_name=last,
            organization=organization,
            owner=user,
            source=Contact.Source.API,
            marketing=False,
        )
        ContactEmail.objects.create(contact=contact, address=address, is_primary=True)
        record_crm_change(
            "created", contact, actor=actor, channel="api", address=client,
            fields=["first_name", "last_name", "organization", "emails"],
            detail={"source": "addin"},
        )  # fmt: skip
        contact_addresses_added([address])  # hooks run after commit
    return contact
