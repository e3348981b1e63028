"""The one policy answer per address: may mail with it be logged, may it be tracked, and why.

`decide` is the rule, a pure function of what is known about one address (never-log match,
internal, its contacts and their current consent, the org and user settings); the capture
gate (capture/gate.py) calls it per participant with what its batch preloaded, and
`recipient_verdicts` calls it for a list of addresses with its own few bulk queries (the
compose check, tracking). Both therefore give the same answer. See docs/governance.md,
"Eligibility".

The rules, in order:

1. never-log (org-wide, or the user's personal rules; address or its domain) -> neither;
2. internal addresses -> logged as the org's `log_internal_mail` says, never tracked;
3. processing consent withdrawn -> neither (whatever the privacy mode);
4. privacy mode and no current legal basis (none, withdrawn, no contact) -> neither;
5. tracking: the user's effective `track` setting on, the address a contact, its tracking
   consent not refused, and under privacy mode granted.

An address with several contacts answers for the strictest of them: one withdrawn consent
withdraws, one contact without a basis means no basis, tracking needs every one granted (or,
outside privacy mode, none refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db.models.functions import Lower

from crm.addresses import InvalidAddress, normalize_address, registrable_domain, split_address
from crm.models import ContactEmail, User, UserAddress
from governance.consent import Action, Basis, CurrentBasis, current_bases
from governance.models import NeverLogRule, OrgSettings
from governance.settings import effective_settings

# Stable reason codes (API answers and stored gate reasons use them).
OK = "ok"
NEVER_LOG = "never_log"
INTERNAL = "internal"
CONSENT_WITHDRAWN = "consent_withdrawn"
NO_LEGAL_BASIS = "no_legal_basis"
TRACKING_OFF = "tracking_off"
TRACKING_REFUSED = "tracking_refused"
NO_TRACKING_CONSENT = "no_tracking_consent"
NOT_A_CONTACT = "not_a_contact"
INVALID_ADDRESS = "invalid_address"

REASONS = (
    OK,
    NEVER_LOG,
    INTERNAL,
    CONSENT_WITHDRAWN,
    NO_LEGAL_BASIS,
    TRACKING_OFF,
    TRACKING_REFUSED,
    NO_TRACKING_CONSENT,
    NOT_A_CONTACT,
    INVALID_ADDRESS,
)


@dataclass(frozen=True)
class RecipientVerdict:
    address: str
    may_log: bool
    log_reason: str
    may_track: bool
    track_reason: str
    contact_ids: tuple[int, ...]
    basis: str | None
    internal: bool


@dataclass(frozen=True)
class ConsentSummary:
    """The strictest state over an address's contacts."""

    basis: str | None  # None: no contact, or one of them has no current basis
    withdrawn: bool
    tracking: str  # "granted" (all granted), "refused" (any refused) or "unknown"


def summarise(contact_ids: Iterable[int], bases: Mapping[int, CurrentBasis]) -> ConsentSummary:
    ids = sorted(set(contact_ids))
    if not ids:
        return ConsentSummary(basis=None, withdrawn=False, tracking="unknown")
    states = [bases.get(cid) or CurrentBasis(contact_id=cid) for cid in ids]
    withdrawn = any(
        s.basis_provenance is not None and s.basis_provenance.action == Action.WITHDRAWN
        for s in states
    )
    basis = None if any(s.basis == Basis.NONE for s in states) else states[0].basis
    if any(s.tracking == Action.REFUSED for s in states):
        tracking = str(Action.REFUSED)
    elif all(s.tracking == Action.GRANTED for s in states):
        tracking = str(Action.GRANTED)
    else:
        tracking = "unknown"
    return ConsentSummary(basis=basis, withdrawn=withdrawn, tracking=tracking)


def matches_never_log(address: str, rules: frozenset[str] | set[str]) -> bool:
    """The address, its domain or its registrable domain is among `rules` (normalised values)."""
    if not rules:
        return False
    if address in rules:
        return True
    try:
        domain = split_address(address)[1]
    except ValueError:
        return False
    return domain in rules or registrable_domain(domain) in rules


def decide(
    address: str,
    *,
    never_log: bool,
    internal: bool,
    contact_ids: Iterable[int],
    bases: Mapping[int, CurrentBasis],
    privacy_mode: bool,
    log_internal_mail: bool,
    track: bool,
) -> RecipientVerdict:
    """The verdict for one address from what is known about it (no queries)."""
    ids = tuple(sorted(set(contact_ids)))
    if never_log:
        return RecipientVerdict(address, False, NEVER_LOG, False, NEVER_LOG, ids, None, internal)
    if internal:
        return RecipientVerdict(
            address, log_internal_mail, INTERNAL, False, INTERNAL, ids, None, True
        )
    summary = summarise(ids, bases)

    def refused(reason: str) -> RecipientVerdict:
        return RecipientVerdict(address, False, reason, False, reason, ids, summary.basis, False)

    if summary.withdrawn:
        return refused(CONSENT_WITHDRAWN)
    if privacy_mode and summary.basis is None:
        return refused(NO_LEGAL_BASIS)
    may_track, track_reason = True, OK
    if not track:
        may_track, track_reason = False, TRACKING_OFF
    elif not ids:
        may_track, track_reason = False, NOT_A_CONTACT
    elif summary.tracking == Action.REFUSED:
        may_track, track_reason = False, TRACKING_REFUSED
    elif privacy_mode and summary.tracking != Action.GRANTED:
        may_track, track_reason = False, NO_TRACKING_CONSENT
    return RecipientVerdict(address, True, OK, may_track, track_reason, ids, summary.basis, False)


def relevant_never_log_values(user: User | None, addresses: Iterable[str]) -> frozenset[str]:
    """Only the rules that could match these addresses (address, domain, registrable domain):
    an index lookup instead of loading every rule."""
    keys: set[str] = set()
    for a in addresses:
        keys.add(a)
        try:
            domain = split_address(a)[1]
        except ValueError:
            continue
        keys.add(domain)
        keys.add(registrable_domain(domain))
    if not keys:
        return frozenset()
    qs = NeverLogRule.objects.filter(value__in=sorted(keys))
    if user is not None and user.pk is not None:
        qs = qs.filter(user__isnull=True) | qs.filter(user=user)
    else:
        qs = qs.filter(user__isnull=True)
    return frozenset(v.strip().lower() for v in qs.values_list("value", flat=True))


def internal_addresses(addresses: list[str], org: OrgSettings) -> set[str]:
    """Which of these addresses are internal: a user's login or verified connected address or
    alias, or in one of the org's internal domains (as capture's BatchContext.is_internal)."""
    domains = {registrable_domain(d) for d in org.internal_domains or []}
    found = set(
        UserAddress.objects.verified()
        .filter(address__in=addresses)
        .values_list("address", flat=True)
    )
    found.update(
        User.objects.annotate(e=Lower("email"))
        .filter(e__in=addresses, is_active=True)
        .values_list("e", flat=True)
    )
    for a in addresses:
        try:
            if registrable_domain(split_address(a)[1]) in domains:
                found.add(a)
        except ValueError:
            continue
    return found


def recipient_verdicts(
    user: User, addresses: list[str], *, org: OrgSettings | None = None
) -> dict[str, RecipientVerdict]:
    """The verdict for each address (keyed by the address as given), in a few queries: never-log
    rules, internal users, contacts, and one for the consent bases of all their contacts."""
    org = org or OrgSettings.load()
    normal: dict[str, str | None] = {}
    for given in addresses:
        try:
            normal[given] = normalize_address(given)
        except InvalidAddress:
            normal[given] = None
    valid = sorted({a for a in normal.values() if a})
    rules = relevant_never_log_values(user, valid)
    internal = internal_addresses(valid, org) if valid else set()
    contacts: dict[str, set[int]] = {}
    if valid:
        for address, cid in ContactEmail.objects.filter(address__in=valid).values_list(
            "address", "contact_id"
        ):
            contacts.setdefault(address, set()).add(cid)
    bases = current_bases({cid for ids in contacts.values() for cid in ids})
    track = effective_settings(user, org=org).track.value
    out: dict[str, RecipientVerdict] = {}
    for given, address in normal.items():
        if address is None:
            out[given] = RecipientVerdict(
                given, False, INVALID_ADDRESS, False, INVALID_ADDRESS, (), None, False
            )
            continue
        out[given] = decide(
            address,
            never_log=matches_never_log(address, rules),
            internal=address in internal,
            contact_ids=contacts.get(address, ()),
            bases=bases,
            privacy_mode=org.privacy_mode,
            log_internal_mail=org.log_internal_mail,
            track=bool(track),
        )
    return out
