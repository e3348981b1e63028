"""Re-matching: when a contact is created or gains an address, earlier participants with that
address that matched no contact become matched to it, and their threads are offered to the
link rules as a backfill an admin confirms (a review item), never linked behind their back."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from capture.models import Participant, ReviewItem, ThreadLink
from capture.pipeline import sync_link_dates
from crm.models import ContactEmail
from governance.audit import record_event


def rematch_addresses(addresses: list[str]) -> int:
    """Match unmatched participants with these addresses; returns how many were matched."""
    addresses = sorted({a.strip().lower() for a in addresses if a})
    if not addresses:
        return 0
    owners: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for addr, cid, oid in ContactEmail.objects.filter(address__in=addresses).values_list(
        "address", "contact_id", "contact__organization_id"
    ):
        owners[addr].append((cid, oid))
    matched = 0
    with transaction.atomic():
        rows = (
            Participant.objects.select_for_update()
            .filter(address__in=list(owners), match=Participant.Match.UNMATCHED)
            .select_related("email")
        )
        threads_by_contact: dict[int, set[int]] = defaultdict(set)
        links = []
        for p in rows:
            found = owners[p.address]
            if len({cid for cid, _ in found}) != 1:
                continue  # still ambiguous: the review queue handles several contacts
            cid, oid = found[0]
            p.match, p.contact_id = Participant.Match.MATCHED, cid
            if oid and not p.organization_id:
                p.organization_id = oid
            p.save(update_fields=["match", "contact", "organization"])
            links.append(
                ThreadLink(
                    thread_id=p.email.thread_id,
                    contact_id=cid,
                    source=ThreadLink.Source.PARTICIPANT,
                    email=p.email,
                )
            )
            if p.organization_id:
                links.append(
                    ThreadLink(
                        thread_id=p.email.thread_id,
                        organization_id=p.organization_id,
                        source=ThreadLink.Source.PARTICIPANT,
                        email=p.email,
                    )
                )
            threads_by_contact[cid].add(p.email.thread_id)
            matched += 1
        ThreadLink.objects.bulk_create(links, ignore_conflicts=True)
        sync_link_dates({link.thread_id for link in links})  # their place on timelines
        for cid, thread_ids in threads_by_contact.items():
            ReviewItem.objects.create(
                kind=ReviewItem.Kind.REMATCH_BACKFILL,
                candidates=sorted(thread_ids),
                detail={"contact": cid, "threads": len(thread_ids)},
            )
            record_event(
                "participants.rematched",
                actor="worker:rematch",
                object_type="crm.contact",
                object_id=cid,
                detail={"threads": len(thread_ids)},
            )
    return matched
