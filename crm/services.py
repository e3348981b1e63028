"""CRM service functions: addresses and domains of records, upserts, tokens, audit of changes.

Views (API), admin pages and imports are thin wrappers over these functions, so every
path into the CRM normalises the same way and writes the same audit events.

Other apps learn about new contact addresses through a hook registry
(:func:`register_address_hook`), never through an import of theirs here: `crm` must not
import `capture` (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext

from core.db.bulk import bulk_insert, new_row
from crm.addresses import (
    InvalidAddress,
    is_free_mail_domain,
    normalize_address,
    registrable_domain,
)
from crm.models import ApiToken, Contact, ContactEmail, Organization, OrganizationDomain, User

logger = logging.getLogger(__name__)

__all__ = [
    "AddressHook",
    "CrmError",
    "DomainTaken",
    "EmailSpec",
    "InvalidDomain",
    "InvalidEmails",
    "InvalidScopes",
    "MailContact",
    "assign_token_secret",
    "check_domain_available",
    "contact_addresses_added",
    "create_contacts_from_mail",
    "issue_api_token",
    "normalize_domain",
    "normalize_email_specs",
    "parse_email_list",
    "record_crm_change",
    "register_address_hook",
    "reserve_contact_ids",
    "revoke_api_tokens",
    "set_contact_emails",
    "set_organization_domains",
    "split_name",
    "unregister_address_hook",
]


class CrmError(Exception):
    """Base of every error the crm services raise on purpose (bad input, conflicts)."""


class InvalidEmails(CrmError):
    """A list of contact addresses cannot be stored (bad address, duplicate, two primaries)."""


class InvalidDomain(CrmError):
    """A value is not a domain that can identify an organization."""


class DomainTaken(InvalidDomain):
    """The registrable domain already belongs to another organization."""

    def __init__(self, domain: str, organization: Organization) -> None:
        self.domain = domain
        self.organization = organization
        super().__init__(
            f"The domain {domain} already belongs to the organization "
            f"“{organization}” (id {organization.pk})."
        )


class InvalidScopes(CrmError):
    """A token was requested with scopes that do not exist."""


# --- hooks: "a contact gained an address" ------------------------------------------------

AddressHook = Callable[[list[str]], None]
_address_hooks: list[AddressHook] = []


def register_address_hook(fn: AddressHook) -> AddressHook:
    """Call ``fn(addresses)`` after commit whenever contacts gain addresses (idempotent)."""
    if fn not in _address_hooks:
        _address_hooks.append(fn)
    return fn


def unregister_address_hook(fn: AddressHook) -> None:
    """Remove a hook registered with :func:`register_address_hook` (tests use this)."""
    if fn in _address_hooks:
        _address_hooks.remove(fn)


def contact_addresses_added(addresses: Sequence[str]) -> None:
    """Tell every registered hook, after the current transaction commits, about new addresses."""
    unique = sorted({a for a in addresses if a})
    if not unique:
        return
    for fn in list(_address_hooks):
        transaction.on_commit(lambda fn=fn: fn(list(unique)))


# --- contacts from captured mail -----------------------------------------------------------

CONTACT_CREATED = "crm.contact.created"  # the one action name, whoever creates the contact


@dataclass
class MailContact:
    """A contact to create for an address first seen in captured mail."""

    address: str  # normalised
    name: str = ""  # the display name the mail gave
    organization_id: int | None = None
    owner_id: int | None = None  # the capturing user
    id: int | None = None  # drawn by reserve_contact_ids, else assigned on insert


def reserve_contact_ids(count: int) -> list[int]:
    """Ids drawn from the contacts' sequence (PostgreSQL only), so rows that point at contacts
    created later in the same transaction can be built first (the foreign keys are checked at
    commit: Django creates them DEFERRABLE INITIALLY DEFERRED)."""
    if connection.vendor != "postgresql" or count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Contact._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def create_contacts_from_mail(
    new: Sequence[MailContact], *, actor: Any = "worker:pipeline", channel: str = ""
) -> list[Contact]:
    """Create contacts for addresses seen in captured mail, in bulk: owner = the capturing
    user, not a marketing contact, the address as the primary one; one audit event each
    (CONTACT_CREATED, source "capture") and the address hooks told after commit."""
    if not new:
        return []
    from governance.audit import build_event, record_events  # the leaf every app may call

    now = timezone.now()
    contacts = []
    for spec in new:
        first, last = split_name(spec.name)
        values: dict[str, Any] = {"id": spec.id} if spec.id is not None else {}
        contacts.append(
            new_row(
                Contact,
                **values,
                first_name=first,
                last_name=last,
                organization_id=spec.organization_id,
                owner_id=spec.owner_id,
                source=Contact.Source.CAPTURE,
                marketing=False,
                created=now,
                updated=now,
            )
        )
    bulk_insert(Contact, contacts)
    for spec, contact in zip(new, contacts, strict=True):
        spec.id = contact.pk
    bulk_insert(
        ContactEmail,
        [
            new_row(ContactEmail, contact_id=spec.id, address=spec.address, is_primary=True)
            for spec in new
        ],
    )
    record_events(
        build_event(
            CONTACT_CREATED,
            actor=actor,
            object_type="crm.contact",
            object_id=contact.pk,
            channel=channel,
            detail={"source": "capture"},
        )
        for contact in contacts
    )
    contact_addresses_added([spec.address for spec in new])
    return contacts


def split_name(name: str) -> tuple[str, str]:
    """First and last name from a display name ("Jane Doe", "Doe, Jane")."""
    name = " ".join(name.replace('"', "").split())
    if "," in name:  # "Doe, Jane"
        last, _, first = name.partition(",")
        return first.strip()[:120], last.strip()[:120]
    first, _, last = name.rpartition(" ")
    if not first:
        return last[:120], ""
    return first[:120], last[:120]


# --- contact addresses -------------------------------------------------------------------


@dataclass(frozen=True)
class EmailSpec:
    """One normalised address of a contact and whether it is the primary one."""

    address: str
    is_primary: bool = False


def normalize_email_specs(items: Iterable[Mapping[str, Any] | EmailSpec | str]) -> list[EmailSpec]:
    """Normalise a contact's address list: exactly one primary (the first unless marked).

    Raises InvalidEmails naming the offending entry (by position) on a bad or duplicate address
    or on more than one primary.
    """
    specs: list[EmailSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if isinstance(item, EmailSpec):
            raw, primary = item.address, item.is_primary
        elif isinstance(item, str):
            raw, primary = item, False
        else:
            raw, primary = item.get("address", ""), bool(item.get("is_primary", False))
        try:
            address = normalize_address(raw)
        except InvalidAddress as e:
            raise InvalidEmails(
                gettext("Entry %(index)s: not a valid e-mail address (%(e)s).")
                % {"index": index + 1, "e": e}
            ) from e
        if address in seen:
            raise InvalidEmails(
                gettext("Entry %(index)s: the address %(address)s is listed twice.")
                % {"index": index + 1, "address": address}
            )
        seen.add(address)
        specs.append(EmailSpec(address, primary))
    primaries = [s for s in specs if s.is_primary]
    if len(primaries) > 1:
        raise InvalidEmails(gettext("Only one address can be the primary one."))
    if specs and not primaries:
        specs[0] = EmailSpec(specs[0].address, True)
    return specs


def parse_email_list(text: str) -> list[EmailSpec]:
    """Read the import format "a@x.com;b@y.com" (first = primary); commas work too."""
    parts = [p.strip() for p in (text or "").replace(",", ";").split(";")]
    return normalize_email_specs([p for p in parts if p])


def set_contact_emails(contact: Contact, specs: Sequence[EmailSpec]) -> list[str]:
    """Make the contact's addresses exactly ``specs``; returns the addresses it gained.

    Calls :func:`contact_addresses_added` with the gained addresses (hooks run after commit).
    """
    with transaction.atomic():
        current = {
            e.address: e for e in ContactEmail.objects.select_for_update().filter(contact=contact)
        }
        wanted = {s.address: s for s in specs}
        stale = [a for a in current if a not in wanted]
        if stale:
            ContactEmail.objects.filter(contact=contact, address__in=stale).delete()
        # Clear the primary flag first: the partial unique constraint allows one primary only.
        ContactEmail.objects.filter(contact=contact, is_primary=True).exclude(
            address__in=[s.address for s in specs if s.is_primary]
        ).update(is_primary=False)
        added: list[str] = []
        for spec in specs:
            existing = current.get(spec.address)
            if existing is None:
                ContactEmail.objects.create(
                    contact=contact, address=spec.address, is_primary=spec.is_primary
                )
                added.append(spec.address)
            elif existing.is_primary != spec.is_primary:
                ContactEmail.objects.filter(pk=existing.pk).update(is_primary=spec.is_primary)
        contact_addresses_added(added)
    return added


# --- organization domains ----------------------------------------------------------------


def normalize_domain(value: str) -> str:
    """The registrable domain of a domain, URL-ish value or address ('mail.acme.co.uk' -> 'acme.co.uk').

    Raises InvalidDomain for values that are not domains, public suffixes or free-mail domains.
    """
    text = (value or "").strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].rpartition("@")[2].strip()
    if text.startswith("www."):
        text = text[4:]
    try:
        host = normalize_address(f"postmaster@{text}").partition("@")[2]
    except InvalidAddress as e:
        raise InvalidDomain(
            gettext("“%(value)s” is not a valid domain (%(e)s).") % {"value": value, "e": e}
        ) from e
    domain = registrable_domain(host)
    from crm.addresses import _public_suffix_list  # the loaded list, to avoid a second copy

    if _public_suffix_list().is_public(domain):
        raise InvalidDomain(
            gettext("%(domain)s is a public suffix, not an organization's domain.")
            % {"domain": domain}
        )
    if is_free_mail_domain(domain):
        raise InvalidDomain(
            gettext("%(domain)s is a free-mail domain; it cannot identify an organization.")
            % {"domain": domain}
        )
    return domain


def check_domain_available(domain: str, organization: Organization | None) -> None:
    """Raise DomainTaken when ``domain`` belongs to an organization other than ``organization``."""
    other = (
        OrganizationDomain.objects.select_related("organization")
        .filter(domain=domain)
        .exclude(organization_id=getattr(organization, "pk", None))
        .first()
    )
    if other is not None:
        raise DomainTaken(domain, other.organization)


def normalize_domain_list(
    values: Iterable[str], organization: Organization | None = None
) -> list[str]:
    """Normalise and de-duplicate domains, checking none belongs to another organization."""
    result: list[str] = []
    for value in values:
        domain = normalize_domain(value)
        check_domain_available(domain, organization)
        if domain not in result:
            result.append(domain)
    return result


def set_organization_domains(organization: Organization, domains: Iterable[str]) -> list[str]:
    """Make the organization's domains exactly ``domains`` (normalised); returns those added."""
    wanted = normalize_domain_list(domains, organization)
    with transaction.atomic():
        current = set(organization.domains.values_list("domain", flat=True))
        organization.domains.exclude(domain__in=wanted).delete()
        added = [d for d in wanted if d not in current]
        try:
            with transaction.atomic():
                OrganizationDomain.objects.bulk_create(
                    [OrganizationDomain(organization=organization, domain=d) for d in added]
                )
        except IntegrityError:
            # Lost a race with another writer claiming the same domain: report which one.
            for d in added:
                check_domain_available(d, organization)
            raise
    return added


# --- API tokens --------------------------------------------------------------------------


def issue_api_token(
    *,
    user: User,
    scopes: Iterable[str],
    name: str = "",
    service: str = "",
    expires_at: Any = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` (a service token when ``service`` is set); returns (token, secret).

    The secret is returned once and never stored (only its SHA-256).
    """
    wanted = sorted({s.strip() for s in scopes if s and s.strip()})
    unknown = [s for s in wanted if s not in ApiToken.Scope.values]
    if unknown:
        raise InvalidScopes(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(ApiToken.Scope.values)}."
        )
    if not wanted:
        raise InvalidScopes(gettext("A token needs at least one scope."))
    token = ApiToken(
        user=user,
        name=name or service or f"{user.get_username()} token",
        scopes=wanted,
        service=service,
        expires_at=expires_at,
    )
    key = assign_token_secret(token)
    token.save(force_insert=True)
    return token, key


def assign_token_secret(token: ApiToken) -> str:
    """Give an unsaved token a fresh secret (prefix + hash set on it); returns the secret."""
    key = "mw_" + secrets.token_urlsafe(32)
    token.prefix = key[:10]
    token.key_hash = ApiToken.hash_key(key)
    return key


def revoke_api_tokens(
    tokens: Iterable[ApiToken], *, actor: Any = None, channel: str = "", address: str = ""
) -> int:
    """Revoke active tokens (audited); returns how many were revoked."""
    now = timezone.now()
    count = 0
    with transaction.atomic():
        for token in tokens:
            if token.revoked_at is not None:
                continue
            token.revoked_at = now
            token.save(update_fields=["revoked_at", "updated"])
            record_crm_change("revoked", token, actor=actor, channel=channel, address=address)
            count += 1
    return count


# --- audit -------------------------------------------------------------------------------


def record_crm_change(
    verb: str,
    obj: Model,
    *,
    actor: Any = None,
    channel: str = "",
    address: str = "",
    fields: Iterable[str] = (),
    detail: Mapping[str, Any] | None = None,
    object_id: str | int = "",
) -> None:
    """Write the audit event for a change to a CRM record: action "crm.<model>.<verb>".

    The detail holds field names, never values (values can be personal data).
    """
    from governance.audit import record_event  # the audit module is a leaf every app may call

    info: dict[str, Any] = {"fields": sorted(set(fields))} if fields else {}
    info.update(detail or {})
    record_event(
        f"crm.{obj._meta.model_name}.{verb}",
        actor=actor,
        obj=obj,
        object_id=object_id,
        channel=channel,
        address=address,
        detail=info,
    )


# --- the user's portal language ------------------------------------------------------------


class LanguageRejected(ValueError):
    """Not one of settings.LANGUAGES (nor empty)."""


def set_user_language(
    user: User, language: str | None, *, actor: Any = None, channel: str = "", client: str = ""
) -> bool:
    """Store the portal language of `user` ("" or None = follow the browser); audited.
    Returns whether it changed."""
    from django.conf import settings
    from django.utils.translation import gettext

    from governance.audit import record_event

    language = language or ""
    if language and language not in dict(settings.LANGUAGES):
        raise LanguageRejected(gettext("Not a language of this portal."))
    if user.language == language:
        return False
    before = user.language
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language
        record_event(
            "user.language_changed",
            actor=actor or user,
            obj=user,
            channel=channel,
            address=client,
            detail={"from": before, "to": language},
        )
    return True
