"""The compose check for add-ins (`POST /api/v1/compose/check`): before a mail is sent, what
would happen to each recipient, and what the user's defaults suggest (docs/governance.md,
"Compose check").

Per recipient: which contact the address matches (one, none, or several with ranked
candidates), whether it may be logged and tracked and why (governance.eligibility, the same
answer the capture gate gives). For the message: the user's effective defaults (log? track?
which record kinds to associate), the suggested records (the matched contacts' most recently
active open items, at most five, as HubSpot), and whether tracking must be anonymous (more
than one recipient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, Max

from crm.addresses import normalize_address
from crm.models import Contact, Item, User
from governance.eligibility import RecipientVerdict, recipient_verdicts
from governance.models import OrgSettings
from governance.settings import effective_settings

ROLES = ("to", "cc", "bcc")
SUGGESTED_MAX = 5
CANDIDATES_MAX = 10
ITEM_KINDS = frozenset(Item.Kind.values)


@dataclass(frozen=True)
class Recipient:
    address: str
    role: str


def rank_candidates(contact_ids: tuple[int, ...], user: User) -> list[dict[str, Any]]:
    """Several contacts share an address: the user's own first, then the most recently
    updated, each with why."""
    rows = list(
        Contact.objects.filter(pk__in=contact_ids).values(
            "id", "first_name", "last_name", "owner_id", "organization_id", "updated"
        )
    )
    rows.sort(key=lambda c: (c["owner_id"] != user.pk, -c["updated"].timestamp(), c["id"]))
    out = []
    for n, c in enumerate(rows[:CANDIDATES_MAX]):
        why = [{"code": "recent_activity", "text": f"updated {c['updated']:%Y-%m-%d}"}]
        if c["owner_id"] == user.pk:
            why.insert(0, {"code": "owner", "text": "you own this contact"})
        name = f"{c['first_name']} {c['last_name']}".strip() or f"Contact {c['id']}"
        out.append({"contact": c["id"], "name": name, "rank": n + 1, "why": why})
    return out


def suggested_items(contact_ids: set[int], kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The contacts' most recently active open items of the associated kinds, at most five."""
    wanted = [k for k in kinds if k in ITEM_KINDS]
    if not contact_ids or not wanted:
        return []
    items = (
        Item.objects.open()
        .filter(kind__in=wanted, contacts__in=sorted(contact_ids))
        .values("id", "kind", "title", "stage")
        .annotate(active=Max(F("last_activity_at")), changed=Max(F("updated")))
        .order_by(F("active").desc(nulls_last=True), "-changed", "-id")[:SUGGESTED_MAX]
    )
    return [
        {
            "kind": i["kind"],
            "id": i["id"],
            "title": i["title"],
            "stage": i["stage"],
            "last_activity_at": i["active"],
        }
        for i in items
    ]


def compose_check(
    user: User, sender: str, recipients: list[Recipient], *, org: OrgSettings | None = None
) -> dict[str, Any]:
    org = org or OrgSettings.load()
    settings = effective_settings(user, org=org)
    distinct = list(dict.fromkeys(r.address for r in recipients))
    verdicts: dict[str, RecipientVerdict] = recipient_verdicts(user, distinct, org=org)
    own = user.own_addresses()
    sender_own = normalize_address(sender) in own
    anonymous = len({verdicts[a].address for a in distinct}) > 1
    rows = []
    single_contacts: set[int] = set()
    for r in recipients:
        v = verdicts[r.address]
        if len(v.contact_ids) == 1:
            match, contact, candidates = "one", v.contact_ids[0], []
            if v.may_log:
                single_contacts.add(contact)
        elif v.contact_ids:
            match, contact, candidates = "several", None, rank_candidates(v.contact_ids, user)
        else:
            match, contact, candidates = "none", None, []
        rows.append(
            {
                "address": v.address,
                "role": r.role,
                "match": match,
                "contact": contact,
                "candidates": candidates,
                "internal": v.internal,
                "basis": v.basis,
                "may_log": v.may_log and sender_own,
                "log_reason": v.log_reason if sender_own or not v.may_log else "sender_not_own",
                "may_track": v.may_track and sender_own,
                "track_reason": (
                    v.track_reason if sender_own or not v.may_track else "sender_not_own"
                ),
            }
        )
    log_default = settings.log_all.value and sender_own and any(r["may_log"] for r in rows)
    return {
        "sender": {"address": normalize_address(sender), "own": sender_own},
        "privacy_mode": org.privacy_mode,
        "recipients": rows,
        "defaults": {
            "log": bool(log_default),
            "track": bool(settings.track.value and any(r["may_track"] for r in rows)),
            "associations": list(settings.associations.value),
            "suggested": suggested_items(single_contacts, settings.associations.value)
            if sender_own
            else [],
        },
        "tracking": {
            "anonymous": anonymous,
            "eligible": [r["address"] for r in rows if r["may_track"]],
        },
    }
