"""Linking a thread to CRM records.

Now: the thread is associated with its participants' contacts and organizations (a mail
linked to a person is also linked to the person's organization, as in Pipedrive), and with
the records a user chose in the add-in. The ordered link rules for deals, leads, projects
and tickets (single_open, recent_open, reference) plug in at `apply_link_rules` later.
"""

from __future__ import annotations

from capture.context import BatchContext, Work
from capture.models import Participant, ThreadLink
from core.db.bulk import new_row
from crm.models import Contact, Item, Organization


def apply_link_rules(ctx: BatchContext, work: Work, thread_id: int) -> None:
    """Queue the thread's links for this message (written in bulk at the end of the batch)."""
    email = work.email
    assert email is not None
    contacts: set[int] = set()
    orgs: set[int] = set()
    for p in work.participants:
        if p.match in (Participant.Match.MATCHED, Participant.Match.CREATED) and p.contact_id:
            contacts.add(p.contact_id)
        if p.organization_id and p.match != Participant.Match.INTERNAL:
            orgs.add(p.organization_id)
    chosen = work.raw.options.get("links") or {}
    # A record the user chose in the add-in is linked as their choice (source "addin", made by
    # them), not as an anonymous participant match: one link per record and thread.
    contacts -= chosen_ids(chosen, "contacts")
    orgs -= chosen_ids(chosen, "organizations")
    # A reply queues its thread's links again; within a batch the first one is kept (the
    # insert would skip the repeats on the unique constraints anyway).
    queued = ctx.link_keys
    for cid in sorted(contacts):
        if (thread_id, "contact", cid) in queued:
            continue
        queued.add((thread_id, "contact", cid))
        ctx.new_links.append(
            new_row(
                ThreadLink,
                thread_id=thread_id,
                contact_id=cid,
                source=ThreadLink.Source.PARTICIPANT,
                email=email,
            )
        )
    for oid in sorted(orgs):
        if (thread_id, "organization", oid) in queued:
            continue
        queued.add((thread_id, "organization", oid))
        ctx.new_links.append(
            new_row(
                ThreadLink,
                thread_id=thread_id,
                organization_id=oid,
                source=ThreadLink.Source.PARTICIPANT,
                email=email,
            )
        )
    if chosen:
        link_chosen_records(ctx, work, thread_id, chosen)


def chosen_ids(chosen: dict, key: str) -> set[int]:
    return {int(i) for i in chosen.get(key, []) if str(i).isdigit()}


def link_chosen_records(ctx: BatchContext, work: Work, thread_id: int, chosen: dict) -> None:
    """Records the user picked in the add-in (ids validated at the API; re-checked here)."""
    email = work.email
    user_id = work.raw.user_id
    kinds = (
        ("contacts", Contact, "contact_id"),
        ("organizations", Organization, "organization_id"),
        ("items", Item, "item_id"),
    )
    for key, model, field in kinds:
        ids = sorted(chosen_ids(chosen, key))
        if not ids:
            continue
        for pk in model.objects.filter(pk__in=ids).values_list("pk", flat=True):
            ctx.new_links.append(
                ThreadLink(
                    thread_id=thread_id,
                    source=ThreadLink.Source.ADDIN,
                    created_by_id=user_id,
                    email=email,
                    **{field: pk},
                )
            )
