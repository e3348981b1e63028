"""Legal holds: what each active hold covers, and which messages are held (docs/retention.md).

Holds add up (Google Vault): a message is held while any active hold covers it. Every door
that removes or rewrites mail — the purge, a disposition approval, an admin delete, a
data-subject erasure — asks `held()` (or filters with `messages_on_hold()`) inside its own
transaction, after locking the rows, so a hold placed a moment earlier is honoured.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from capture.models import EmailMessage, LegalHold, Participant, ThreadLink
from governance.audit import record_event

FILTER_KEYS = ("subject", "address", "category")


def active_holds() -> list[LegalHold]:
    return list(
        LegalHold.objects.filter(active=True).prefetch_related(
            "contacts", "organizations", "items", "threads"
        )
    )


def hold_filter(hold: LegalHold) -> Q:
    """The messages `hold` covers, as a Q over EmailMessage."""
    contact_ids = [c.pk for c in hold.contacts.all()]
    org_ids = [o.pk for o in hold.organizations.all()]
    item_ids = [i.pk for i in hold.items.all()]
    thread_ids = [t.pk for t in hold.threads.all()]
    q = Q()
    records = Q(pk__in=[])
    listed = False
    if thread_ids:
        records |= Q(thread_id__in=thread_ids)
        listed = True
    links = Q(pk__in=[])
    if contact_ids:
        links |= Q(contact_id__in=contact_ids)
        records |= Q(
            pk__in=Participant.objects.filter(contact_id__in=contact_ids).values("email_id")
        )
        listed = True
    if org_ids:
        links |= Q(organization_id__in=org_ids)
        records |= Q(
            pk__in=Participant.objects.filter(organization_id__in=org_ids).values("email_id")
        )
        listed = True
    if item_ids:
        links |= Q(item_id__in=item_ids)
        listed = True
    if contact_ids or org_ids or item_ids:
        records |= Q(thread_id__in=ThreadLink.objects.filter(links).values("thread_id"))
    if listed:
        q &= records
    if hold.date_from:
        q &= Q(date__gte=hold.date_from)
    if hold.date_to:
        q &= Q(date__lte=hold.date_to)
    saved = hold.saved_filter or {}
    if saved.get("subject"):
        q &= Q(subject__icontains=saved["subject"])
    if saved.get("address"):
        q &= Q(
            pk__in=Participant.objects.filter(address__iexact=saved["address"]).values("email_id")
        )
    if saved.get("category"):
        q &= Q(categories__contains=[saved["category"]])
    return q


def held_messages(hold: LegalHold) -> QuerySet[EmailMessage]:
    return EmailMessage.objects.filter(hold_filter(hold))


def messages_on_hold(holds: list[LegalHold] | None = None) -> Q:
    """A Q matching every message some active hold covers (matches nothing without holds)."""
    q = Q(pk__in=[])
    for hold in active_holds() if holds is None else holds:
        q |= hold_filter(hold)
    return q


def held(message_ids: Iterable[int]) -> dict[int, list[str]]:
    """The held messages among `message_ids`: id -> names of the holds covering it."""
    return {pk: [h["hold"] for h in holds] for pk, holds in held_with_reasons(message_ids).items()}


def held_with_reasons(message_ids: Iterable[int]) -> dict[int, list[dict[str, str]]]:
    """As `held`, with each hold's reason: id -> [{"hold": name, "reason": reason}] (what a
    data-subject erasure reports as retained, capture/dsr.py)."""
    ids = list({int(i) for i in message_ids})
    result: dict[int, list[dict[str, str]]] = {}
    if not ids:
        return result
    for hold in active_holds():
        for pk in EmailMessage.objects.filter(hold_filter(hold), pk__in=ids).values_list(
            "pk", flat=True
        ):
            result.setdefault(pk, []).append({"hold": hold.name, "reason": hold.reason})
    return result


class MessageOnHold(Exception):
    """Something tried to remove or rewrite held mail."""

    def __init__(self, holds: dict[int, list[str]]) -> None:
        names = sorted({n for v in holds.values() for n in v})
        super().__init__(f"{len(holds)} message(s) on legal hold: {', '.join(names)}")
        self.holds = holds


def ensure_not_held(message_ids: Iterable[int]) -> None:
    """Raise MessageOnHold when any of these messages is held (for admin and erasure doors)."""
    found = held(message_ids)
    if found:
        raise MessageOnHold(found)


def coverage(hold: LegalHold) -> dict[str, int]:
    qs = held_messages(hold)
    return {"messages": qs.count(), "threads": qs.values("thread_id").distinct().count()}


def _scope_detail(hold: LegalHold) -> dict[str, Any]:
    return {
        "contacts": sorted(c.pk for c in hold.contacts.all()),
        "organizations": sorted(o.pk for o in hold.organizations.all()),
        "items": sorted(i.pk for i in hold.items.all()),
        "threads": sorted(t.pk for t in hold.threads.all()),
        "date_from": hold.date_from.isoformat() if hold.date_from else None,
        "date_to": hold.date_to.isoformat() if hold.date_to else None,
        "filter_keys": sorted((hold.saved_filter or {}).keys()),
    }


def validate_saved_filter(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ["Must be an object."]
    errors = [f"Unknown key {k!r}." for k in value if k not in FILTER_KEYS]
    errors += [
        f"{k} must be a non-empty string."
        for k, v in value.items()
        if not isinstance(v, str) or not v
    ]
    return errors


def hold_placed(hold: LegalHold, *, actor: Any, channel: str, address: str = "") -> None:
    """Audit a new or changed hold (its scope is saved by the caller, M2M included)."""
    record_event(
        "retention.hold_placed",
        actor=actor,
        obj=hold,
        channel=channel,
        address=address,
        detail={"scope": _scope_detail(hold), **coverage(hold)},
    )


def release_hold(hold: LegalHold, *, actor: Any, channel: str, address: str = "") -> LegalHold:
    """Release an active hold (kept, inactive); audited. The mail it covered becomes purgeable
    at the next run if due (and no other hold covers it)."""
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if not hold.active:
            return hold
        hold.active = False
        hold.released_at = timezone.now()
        user = actor if getattr(actor, "is_authenticated", False) else None
        hold.released_by = user
        hold.save(update_fields=["active", "released_at", "released_by", "updated"])
        record_event(
            "retention.hold_released",
            actor=actor,
            obj=hold,
            channel=channel,
            address=address,
            detail=coverage(hold),
        )
    return hold
