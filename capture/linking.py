"""Linking a thread to CRM records, in the pipeline, in bulk per batch (docs/linking.md).

A thread links as a whole: to its participants' contacts and their organizations (a mail
linked to a person also shows on the person's organization, as in Pipedrive), to the records
a user chose in the add-in, and to the deals, leads, projects and tickets the ordered link
rules find (`capture.models.LinkRule`: single_open, recent_open(n), reference(pattern)).

`apply_link_rules` runs per message and only queues; `link_items` runs once per batch,
loads what the rules need in a few queries (the batch's stored threads' links and unlinks,
the open items of the batch's contacts, the items carrying the references found) and
decides with capture/link_rules.py, as the backfill does over stored threads
(capture/links.py). Every link it makes says why: the rule and strategy, the participant and
address that matched, the reference found.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import OuterRef, Q, Subquery

from capture.context import BatchContext, Work
from capture.link_rules import (
    MessageFacts,
    ThreadFacts,
    decide_all,
    enabled_rules,
    message_text,
    proposal_link,
)
from capture.models import (
    Participant,
    ReviewItem,
    Thread,
    ThreadLink,
    ThreadUnlink,
    UnmatchedReference,
)
from core.db.bulk import execute_binary, new_row
from crm.models import Contact, Item, Organization

# --- per message: participants, add-in choices -----------------------------------------------


def apply_link_rules(ctx: BatchContext, work: Work, thread_id: int) -> None:
    """Queue the thread's links for this message (written in bulk at the end of the batch);
    the item rules run once for the whole batch (link_items)."""
    email = work.email
    assert email is not None
    contacts: dict[int, str] = {}
    orgs: dict[int, str] = {}
    for p in work.participants:
        if p.match in (Participant.Match.MATCHED, Participant.Match.CREATED) and p.contact_id:
            contacts.setdefault(p.contact_id, p.address)
        if p.organization_id and p.match != Participant.Match.INTERNAL:
            orgs.setdefault(p.organization_id, p.address)
    chosen = work.raw.options.get("links") or {}
    # A record the user chose in the add-in is linked as their choice (source "addin", made by
    # them), not as an anonymous participant match: one link per record and thread.
    for cid in chosen_ids(chosen, "contacts"):
        contacts.pop(cid, None)
    for oid in chosen_ids(chosen, "organizations"):
        orgs.pop(oid, None)
    # A reply queues its thread's links again; within a batch the first one is kept (the
    # insert would skip the repeats on the unique constraints anyway).
    queued = ctx.link_keys
    for key, found in (("contact", contacts), ("organization", orgs)):
        for target_id in sorted(found):
            if (thread_id, key, target_id) in queued:
                continue
            queued.add((thread_id, key, target_id))
            ctx.new_links.append(
                new_row(
                    ThreadLink,
                    thread_id=thread_id,
                    source=ThreadLink.Source.PARTICIPANT,
                    email=email,
                    matched_address=found[target_id][:254],
                    **{f"{key}_id": target_id},
                )
            )
    if chosen:
        link_chosen_records(ctx, work, thread_id, chosen)
    ctx.linked_works.append((work, thread_id, contacts))


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
    for key, model, field_name in kinds:
        ids = sorted(chosen_ids(chosen, key))
        if not ids:
            continue
        for pk in model.objects.filter(pk__in=ids).values_list("pk", flat=True):
            if key == "items":
                ctx.addin_item_threads.add(thread_id)
            ctx.new_links.append(
                ThreadLink(
                    thread_id=thread_id,
                    source=ThreadLink.Source.ADDIN,
                    created_by_id=user_id,
                    email=email,
                    **{field_name: pk},
                )
            )


# --- the batch ------------------------------------------------------------------------------


def link_items(ctx: BatchContext) -> None:
    """Run the enabled link rules over the threads this batch touched (a few queries for the
    whole batch, none per message or rule); queue the links, reviews and unmatched
    references for flush."""
    if not ctx.linked_works:
        return
    touched = {ctx.resolve_thread_id(t) for _, t, _ in ctx.linked_works}
    stored = sorted(touched - ctx.batch_threads)
    # every touched thread: a new one may have absorbed a stored thread and its unlinks
    unlinked = load_unlinks(sorted(touched))
    if unlinked:
        drop_unlinked(ctx, unlinked)
    rules = enabled_rules()
    if not rules:
        return
    by_thread: dict[int, ThreadFacts] = {}
    for work, thread_id, contacts in ctx.linked_works:
        tid = ctx.resolve_thread_id(thread_id)
        facts = by_thread.get(tid)
        if facts is None:
            thread = ctx.thread(tid)
            facts = by_thread[tid] = ThreadFacts(
                tid, thread.first_at, thread.subject, set(), {}, [], chosen_items=False
            )
            if thread.owner_id:
                facts.user_ids.add(thread.owner_id)
        if thread_id in ctx.addin_item_threads or tid in ctx.addin_item_threads:
            facts.chosen_items = True
        gone = unlinked.get(tid, set())
        for cid, address in contacts.items():
            if ("contact", cid) not in gone and _matched(work, cid):
                facts.contacts.setdefault(cid, address)
        if work.raw.user_id:
            facts.user_ids.add(work.raw.user_id)
        email = work.email
        parsed = work.parsed
        assert email is not None and parsed is not None
        facts.messages.append(
            MessageFacts(
                direction=email.direction,
                channel=work.raw.channel,
                auto_generated=parsed.auto_generated,
                link_items=work.link_items,
                text=message_text(parsed.subject or "", parsed.text_body or ""),
                email=email,
            )
        )
    if stored:
        load_stored_thread_facts(by_thread, stored)
    for tid, gone in unlinked.items():
        if tid in by_thread:
            by_thread[tid].unlinked_items.update(i for k, i in gone if k == "item")
    facts = [f for f in by_thread.values() if f.messages and not f.chosen_items]
    decisions = decide_all(rules, facts)
    for decision in decisions:
        for p in decision.links:
            ctx.new_links.append(proposal_link(p, source=ThreadLink.Source.RULE))
        for r in decision.reviews:
            ctx.new_reviews.append(
                ReviewItem(
                    kind=ReviewItem.Kind.AMBIGUOUS_ITEM,
                    thread_id=r.thread_id,
                    email=r.email,
                    candidates=[c["item"] for c in r.candidates],
                    detail={
                        "rule": r.rule.pk,
                        "kind": r.rule.kind,
                        "strategy": r.rule.strategy,
                        "ranked": r.candidates,
                    },
                )
            )
        for email, rule, ref in decision.unmatched:
            if email is not None:
                ctx.new_unmatched_refs.append(
                    UnmatchedReference(email=email, rule=rule, reference=ref)
                )


def _matched(work: Work, cid: int) -> bool:
    # Only contacts matched by address have items; a contact created from this mail has none.
    return any(
        p.contact_id == cid and p.match == Participant.Match.MATCHED for p in work.participants
    )


def load_unlinks(thread_ids: list[int]) -> dict[int, set[tuple[str, int]]]:
    """The sticky unlinks of these threads: thread id -> {("item", 5), ("contact", 3), ...}."""
    out: dict[int, set[tuple[str, int]]] = defaultdict(set)
    if not thread_ids:
        return out
    for tid, cid, oid, iid in ThreadUnlink.objects.filter(thread_id__in=thread_ids).values_list(
        "thread_id", "contact_id", "organization_id", "item_id"
    ):
        out[tid].add(("contact", cid) if cid else ("organization", oid) if oid else ("item", iid))
    return out


def merge_unlinks(other_id: int, into_id: int) -> None:
    """Move a merged thread's sticky unlinks to the thread that absorbed it."""
    have = set(
        ThreadUnlink.objects.filter(thread_id=into_id).values_list(
            "contact_id", "organization_id", "item_id"
        )
    )
    for unlink in ThreadUnlink.objects.filter(thread_id=other_id):
        if (unlink.contact_id, unlink.organization_id, unlink.item_id) in have:
            unlink.delete()
        else:
            ThreadUnlink.objects.filter(pk=unlink.pk).update(thread_id=into_id)


def link_key(link: ThreadLink) -> tuple[str, int]:
    if link.contact_id:
        return ("contact", link.contact_id)
    if link.organization_id:
        return ("organization", link.organization_id)
    return ("item", link.item_id)


def drop_unlinked(ctx: BatchContext, unlinked: dict[int, set[tuple[str, int]]]) -> None:
    """A link a person removed is not made again by a new message's participants (the
    add-in's explicit choice is a person's and stays)."""
    ctx.new_links = [
        link
        for link in ctx.new_links
        if link.source == ThreadLink.Source.ADDIN
        or link_key(link) not in unlinked.get(ctx.resolve_thread_id(link.thread_id), ())
    ]


def load_stored_thread_facts(by_thread: dict[int, ThreadFacts], thread_ids: list[int]) -> None:
    """Add what stored threads already have: contacts and items linked, open item reviews
    (two queries for all of them)."""
    for tid, cid, iid, kind, address, source in ThreadLink.objects.filter(
        thread_id__in=thread_ids
    ).values_list("thread_id", "contact_id", "item_id", "item__kind", "matched_address", "source"):
        facts = by_thread[tid]
        if iid:
            facts.linked_items[iid] = kind
            facts.chosen_items |= source == ThreadLink.Source.ADDIN
        elif cid:
            facts.contacts.setdefault(cid, address)
    # By thread alone (its index), status and kind checked here: a filter on them let the
    # planner pick the (status, kind) index, a scan of every open review in the database.
    for tid, status, kind, detail in ReviewItem.objects.filter(
        thread_id__in=thread_ids
    ).values_list("thread_id", "status", "kind", "detail"):
        rule = (detail or {}).get("rule")
        if rule and status == ReviewItem.Status.OPEN and kind == ReviewItem.Kind.AMBIGUOUS_ITEM:
            by_thread[tid].open_reviews.add(rule)


# --- ambiguous contacts ---------------------------------------------------------------------


def ambiguous_contact_reviews(ctx: BatchContext) -> list[ReviewItem]:
    """A review item per ambiguous participant, its contact candidates ranked (one query)."""
    ambiguous = [p for p in ctx.new_participants if p.match == Participant.Match.AMBIGUOUS]
    if not ambiguous:
        return []
    ids = {int(c) for p in ambiguous for c in p.candidates}
    contacts = {
        c["id"]: c
        for c in Contact.objects.filter(pk__in=ids).values(
            "id", "updated", "owner_id", "organization_id"
        )
    }
    orgs_by_email: dict[int, set[int]] = defaultdict(set)
    for p in ctx.new_participants:
        if p.organization_id and p.match != Participant.Match.AMBIGUOUS:
            orgs_by_email[id(p.email)].add(p.organization_id)
    reviews = []
    for p in ambiguous:
        thread_orgs = orgs_by_email[id(p.email)]
        capturer = {c.user_id for c in ctx.new_captures if c.email is p.email}
        known = [contacts[int(c)] for c in p.candidates if int(c) in contacts]
        ranked = rank_contacts(known, thread_orgs, capturer)
        reviews.append(
            ReviewItem(
                kind=ReviewItem.Kind.AMBIGUOUS_CONTACT,
                email=p.email,
                thread_id=ctx.resolve_thread_id(p.email.thread_id),
                participant=p,
                candidates=[c["contact"] for c in ranked],
                detail={"ranked": ranked},
            )
        )
    return reviews


def rank_contacts(contacts: list[dict], thread_orgs: set[int], users: set) -> list[dict]:
    newest = sorted(contacts, key=lambda c: (c["updated"], c["id"]), reverse=True)
    out = []
    for n, c in enumerate(newest):
        why = [{"code": "recent_activity", "text": f"updated {c['updated']:%Y-%m-%d} (#{n + 1})"}]
        share = 1.0 if c["organization_id"] and c["organization_id"] in thread_orgs else 0.0
        if share:
            why.append(
                {"code": "participants", "text": "other participants share its organization"}
            )
        owner = 1.0 if c["owner_id"] and c["owner_id"] in users else 0.0
        if owner:
            why.append({"code": "owner", "text": "owned by the capturing user"})
        score = round(0.4 / (1 + n) + 0.35 * share + 0.25 * owner, 4)
        out.append({"contact": c["id"], "score": score, "why": why})
    out.sort(key=lambda c: (-c["score"], c["contact"]))
    return out


# --- the links' copy of their thread's last activity (the timelines' sort key) ------------


def sync_link_dates(thread_ids: set[int]) -> None:
    """Copy each thread's last_at to its links, the sort key of the records' timelines
    (capture/timeline.py); links already up to date are not rewritten."""
    if not thread_ids:
        return
    if connection.vendor == "postgresql":
        assert ThreadLink._meta.db_table == "capture_threadlink"
        execute_binary(_SYNC_LINK_DATES_PG, [sorted(thread_ids)])
        return
    last = Thread.objects.filter(pk=OuterRef("thread_id")).values("last_at")[:1]
    ThreadLink.objects.filter(thread_id__in=sorted(thread_ids)).filter(
        Q(last_at__isnull=True) | ~Q(last_at=Subquery(last))
    ).update(last_at=Subquery(last))


_SYNC_LINK_DATES_PG = """
UPDATE capture_threadlink AS l SET last_at = t.last_at
FROM capture_thread AS t
WHERE t.id = ANY(%b::bigint[]) AND l.thread_id = t.id AND l.last_at IS DISTINCT FROM t.last_at
"""
