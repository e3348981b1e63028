"""Resolve each address of a message to a contact, an organization or an internal user.

Exact normalised address over primary and secondary addresses (Dynamics looks only at the
primary one; we look at all). One match links; none may create a contact (org policy); several
are recorded as ambiguous for review, never guessed. Free-mail domains never match organizations.

The gate's verdict comes first (capture/gate.py, governance.eligibility): an address that may
not be logged (withdrawn consent; under privacy mode, no legal basis) is recorded `suppressed`
with its reason, linked to no contact or organization, and no contact is created for it.
Private mail creates no contacts either.
"""

from __future__ import annotations

from django.db import connection

from capture.context import BatchContext, Work, all_addresses
from capture.mime import Address, ParsedEmail
from capture.models import EmailMessage, Participant
from core.db.bulk import new_row
from crm.addresses import is_role_address, registrable_domain, split_address
from crm.models import ContactEmail
from crm.services import MailContact, create_contacts_from_mail, reserve_contact_ids
from governance.models import OrgSettings

CONTACT_ID_BLOCK = 50  # contact ids drawn per query (PostgreSQL), as threads draw theirs

Role = Participant.Role
Match = Participant.Match


def message_roles(parsed: ParsedEmail) -> list[tuple[str, Address]]:
    """(role, address) pairs, one per address and role, in header order."""
    pairs: list[tuple[str, Address]] = [(Role.FROM, a) for a in parsed.from_]
    if parsed.sender is not None and parsed.sender.address not in {a.address for a in parsed.from_}:
        pairs.append((Role.SENDER, parsed.sender))
    pairs += [(Role.REPLY_TO, a) for a in parsed.reply_to]
    pairs += [(Role.TO, a) for a in parsed.to]
    pairs += [(Role.CC, a) for a in parsed.cc]
    pairs += [(Role.BCC, a) for a in parsed.bcc]
    seen_attendees = {a.address for _, a in pairs}
    for event in parsed.calendar:
        for a in event.attendees:
            if a.address not in seen_attendees:
                pairs.append((Role.ATTENDEE, a))
                seen_attendees.add(a.address)
    seen: set[tuple[str, str]] = set()
    out = []
    for role, a in pairs:
        key = (role, a.address or a.raw)
        if key not in seen:
            seen.add(key)
            out.append((role, a))
    return out


def derive_direction(ctx: BatchContext, parsed: ParsedEmail) -> str:
    senders = [a.address for a in parsed.from_ if a.valid]
    recipients = [a.address for a in (*parsed.to, *parsed.cc, *parsed.bcc) if a.valid]
    if not senders:
        return EmailMessage.Direction.UNKNOWN
    from_internal = any(ctx.is_internal(a) for a in senders)
    if not from_internal:
        return EmailMessage.Direction.INBOUND
    if recipients and all(ctx.is_internal(a) for a in recipients):
        return EmailMessage.Direction.INTERNAL
    return EmailMessage.Direction.OUTBOUND


def resolve_participants(ctx: BatchContext, work: Work, direction: str) -> list[Participant]:
    """Unsaved Participant rows for the message, contacts auto-created where policy allows."""
    parsed = work.parsed
    assert parsed is not None and work.email is not None
    out: list[Participant] = []
    for role, addr in message_roles(parsed):
        p = new_row(
            Participant,
            email=work.email,
            role=role,
            address=addr.address or addr.raw[:254],
            name=addr.name[:300],
        )
        if not addr.valid or not addr.address:
            p.match = Match.INVALID
        elif ctx.is_internal(addr.address):
            p.match = Match.INTERNAL
            p.user_id = ctx.internal_users.get(addr.address)
        else:
            match_contact(ctx, work, p, addr, direction)
        out.append(p)
    return out


def match_contact(
    ctx: BatchContext, work: Work, p: Participant, addr: Address, direction: str
) -> None:
    verdict = work.verdicts.get(addr.address)
    if verdict is not None and not verdict.may_log:
        p.match = Match.SUPPRESSED
        p.gate_reason = verdict.log_reason
        return
    found = ctx.contacts_by_address.get(addr.address, [])
    distinct = sorted({cid for cid, _ in found})
    if len(distinct) == 1:
        p.match = Match.MATCHED
        p.contact_id = distinct[0]
        p.organization_id = found[0][1] or organization_for_address(ctx, addr.address)
        return
    if len(distinct) > 1:
        p.match = Match.AMBIGUOUS
        p.candidates = distinct
        p.organization_id = organization_for_address(ctx, addr.address)
        return
    p.organization_id = organization_for_address(ctx, addr.address)
    if not work.private and may_auto_create(ctx, addr.address, direction):
        p.match = Match.CREATED
        p.contact_id = auto_create_contact(ctx, work, addr, p.organization_id)
    else:
        p.match = Match.UNMATCHED


def organization_for_address(ctx: BatchContext, address: str) -> int | None:
    domain = registrable_domain(split_address(address)[1])
    if ctx.policy.is_free_mail(domain):
        return None
    return ctx.org_by_domain.get(domain)


def may_auto_create(ctx: BatchContext, address: str, direction: str) -> bool:
    policy = ctx.policy.settings
    if policy.auto_create_contacts == OrgSettings.AutoCreate.NEVER:
        return False
    if (
        policy.auto_create_contacts == OrgSettings.AutoCreate.SENT
        and direction != EmailMessage.Direction.OUTBOUND
    ):
        return False
    if is_role_address(address, ctx.policy.role_extra):
        return False  # never a contact: noreply@, info@, ... (crm.addresses.ROLE_LOCAL_PARTS)
    domain = split_address(address)[1]
    return policy.auto_create_from_free_mail or not ctx.policy.is_free_mail(domain)


def auto_create_contact(
    ctx: BatchContext, work: Work, addr: Address, organization_id: int | None
) -> int:
    """The id of a new contact for this address: owner = capturing user, not a marketing
    contact (HubSpot). crm owns the rows (crm.services.create_contacts_from_mail).

    PostgreSQL: the id is drawn now and the batch's contacts are inserted together at flush
    (`ctx.new_contacts`); elsewhere the contact is created at once.
    """
    spec = MailContact(
        address=addr.address,
        name=addr.name,
        organization_id=organization_id,
        owner_id=work.raw.user_id,
    )
    if connection.vendor == "postgresql":
        # Two workers seeing the same new address must not create two contacts.
        lock_creatable_addresses(ctx)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["contact:" + addr.address])
        existing = list(
            ContactEmail.objects.filter(address=addr.address).values_list(
                "contact_id", "contact__organization_id"
            )
        )
        if existing:
            ctx.contacts_by_address[addr.address] = existing
            return existing[0][0]
        if not ctx.contact_ids:
            ctx.contact_ids = reserve_contact_ids(CONTACT_ID_BLOCK)[::-1]
        spec.id = ctx.contact_ids.pop()
        ctx.new_contacts.append(spec)
    else:
        create_contacts_from_mail([spec])
    assert spec.id is not None
    ctx.contacts_by_address[addr.address] = [(spec.id, organization_id)]
    return spec.id


def lock_creatable_addresses(ctx: BatchContext) -> None:
    """Take the batch's contact-creation locks once, all together and in key order.

    Taken one by one as contacts are created, two workers creating contacts for the same
    addresses in opposite orders deadlock (PostgreSQL aborts one batch). Every address this
    batch could create a contact for is locked here, before the first creation.
    """
    if ctx.creation_locks_taken:
        return
    ctx.creation_locks_taken = True
    keys = sorted(
        {
            "contact:" + a
            for w in ctx.works
            if w.parsed is not None
            for a in all_addresses(w.parsed)
            if not ctx.contacts_by_address.get(a) and not ctx.is_internal(a)
        }
    )
    if keys:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtext(x) AS k"
                " FROM unnest(%s::text[]) AS x ORDER BY k) AS ordered",
                [keys],
            )
