"""Plain factory functions: make_x(**overrides) -> saved model instance."""

from __future__ import annotations

import itertools

from crm.models import (
    Contact,
    ContactEmail,
    Item,
    Organization,
    OrganizationDomain,
    User,
    UserAddress,
)

_seq = itertools.count(1)


def make_user(**overrides) -> User:
    n = next(_seq)
    fields = {
        "username": f"user{n}",
        "email": f"user{n}@mailwarden-demo.com",
        "role": User.Role.MEMBER,
    }
    fields.update(overrides)
    password = fields.pop("password", "pw-" + fields["username"])
    user = User(**fields)
    user.set_password(password)
    user.save()
    return user


def make_user_address(user: User, address: str, kind: str = UserAddress.Kind.ALIAS) -> UserAddress:
    return UserAddress.objects.create(user=user, address=address, kind=kind)


def make_organization(*, domains: tuple[str, ...] = (), **overrides) -> Organization:
    n = next(_seq)
    fields = {"name": f"Org {n}"}
    fields.update(overrides)
    org = Organization.objects.create(**fields)
    for d in domains:
        OrganizationDomain.objects.create(organization=org, domain=d)
    return org


def make_contact(*, emails: tuple[str, ...] = (), **overrides) -> Contact:
    """The first address is primary, the rest secondary."""
    n = next(_seq)
    fields = {"first_name": "Contact", "last_name": str(n)}
    fields.update(overrides)
    contact = Contact.objects.create(**fields)
    for i, address in enumerate(emails):
        ContactEmail.objects.create(contact=contact, address=address, is_primary=(i == 0))
    return contact


def make_item(*, contacts: tuple[Contact, ...] = (), **overrides) -> Item:
    n = next(_seq)
    fields = {"kind": Item.Kind.DEAL, "title": f"Deal {n}"}
    fields.update(overrides)
    item = Item.objects.create(**fields)
    if contacts:
        item.contacts.add(*contacts)
    return item


# --- capture and governance (pipeline tests) --------------------------------------------------


def make_capture_address(user: User, **overrides):
    from capture.models import CaptureAddress

    return CaptureAddress.objects.create(user=user, **overrides)


def make_mailbox(owner: User, **overrides):
    from capture.models import MailboxConnection

    fields = {"host": "imap.example.test", "username": owner.email or owner.username}
    fields.update(overrides)
    return MailboxConnection.objects.create(owner=owner, **fields)


def make_never_log_rule(value: str, *, user: User | None = None, **overrides):
    """An address rule when `value` has an @, else a domain rule; org-wide unless `user`."""
    from governance.models import NeverLogRule

    kind = NeverLogRule.Kind.ADDRESS if "@" in value else NeverLogRule.Kind.DOMAIN
    fields = {"kind": kind, "value": value, "user": user}
    fields.update(overrides)
    return NeverLogRule.objects.create(**fields)


def set_org_settings(**fields):
    """Update the one OrgSettings row (created on first use) and return it."""
    from governance.models import OrgSettings

    org = OrgSettings.load()
    for name, value in fields.items():
        setattr(org, name, value)
    org.save()
    return org
