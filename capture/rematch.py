"""Re-matching: when a contact is created or gains an address, earlier participants with that
address that matched no contact become matched to it, their threads are linked to the contact
(and its organization), and the link rules run over those threads through the same backfill
an admin previews and runs (capture/links.py), so a re-match links what a new capture would
have linked. Sticky unlinks are respected; everything is audited."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from capture.linking import load_unlinks, sync_link_dates
from capture.links import run_backfill
from capture.models import Participant, ThreadLink
from crm.models import ContactEmail
from governance.audit import record_event

ACTOR = "worker:rematch"


def rematch_addresses(addresses: list[str]) -> int:
    """Match unmatched participants with these addresses, link their threads and run the
    link rules over them; returns how many participants were matched."""
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
        rows = list(
            Participant.objects.select_for_update()
            .filter(address__in=list(owners), match=Participant.Match.UNMATCHED)
            .select_related("email")
        )
        unlinked = load_unlinks(sorted({p.email.thread_id for p in rows}))
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
            tid = p.email.thread_id
            gone = unlinked.get(tid, set())
            targets = [("contact", cid)]
            if p.organization_id:
                targets.append(("organization", p.organization_id))
            for kind, pk in targets:
                if (kind, pk) in gone:
                    continue  # a person removed this link: it stays removed
                links.append(
                    ThreadLink(
                        thread_id=tid,
                        source=ThreadLink.Source.PARTICIPANT,
                        email=p.email,
                        matched_address=p.address,
                        **{f"{kind}_id": pk},
                    )
                )
            threads_by_contact[cid].add(tid)
            matched += 1
        ThreadLink.objects.bulk_create(links, ignore_conflicts=True)
        sync_link_dates({link.thread_id for link in links})  # their place on timelines
        for cid, thread_ids in threads_by_contact.items():
            record_event(
                "participants.rematched",
                actor=ACTOR,
                object_type="crm.contact",
                object_id=cid,
                detail={"threads": len(thread_ids)},
            )
        touched = sorted({t for ts in threads_by_contact.values() for t in ts})
        if touched:
            run_backfill(thread_ids=touched, actor=ACTOR, channel="rematch")
    return matched
