"""Linking a thread to CRM records, in the pipeline, in bulk per batch (docs/linking.md).

A thread links as a whole: to its participants' contacts and their organizations (a mail
linked to a person also shows on the person's organization, as in Pipedrive), to the records
a user chose in the add-in, and to the deals, leads, projects and tickets the ordered link
rules find (`capture.models.LinkRule`: single_open, recent_open(n), reference(pattern)).

`apply_link_rules` runs per message and only queues; `link_items` runs once per batch,
loads what the rules need in a few queries (the batch's stored threads' links and unlinks,
the open items of the batch's contacts, the items carrying the references found) and
decides with `decide_links`, the same function the backfill runs over stored threads
(capture/links.py). Every link it makes says why: the rule and strategy, the participant and
address that matched, the reference found.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from capture.context import BatchContext, Work
from capture.models import (
    EmailMessage,
    LinkRule,
    Participant,
    ReviewItem,
    ThreadLink,
    ThreadUnlink,
    UnmatchedReference,
)
from core.db.bulk import new_row
from crm.models import Contact, Item, Organization

Strategy = LinkRule.Strategy
#: How much of a body a `reference` rule reads: references sit in the subject or near the top
#: (the quoted history below is the earlier mail, read when it was captured), and a regex
#: over every 50 KB body for 20 rules would cost more than the rest of linking.
REFERENCE_BODY_CHARS = 4_000
MAX_REFERENCES = 20  # per message and rule


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


# --- the facts a decision needs -------------------------------------------------------------


@dataclass
class MessageFacts:
    direction: str
    channel: str
    auto_generated: str
    link_items: bool  # False: auto-generated mail the org stores but does not link
    text: str  # subject + the head of the body, for reference rules
    email: EmailMessage | None = None  # where an unmatched reference is recorded
    found: dict[str, list[str]] = field(default_factory=dict)  # pattern -> references

    def references(self, rule: LinkRule) -> list[str]:
        refs = self.found.get(rule.pattern)
        if refs is None:
            refs = self.found[rule.pattern] = find_references(rule, self.text)
        return refs


@dataclass
class ThreadFacts:
    thread_id: int
    first_at: datetime | None
    subject: str
    user_ids: set[int]  # the capturing users (and the owner)
    contacts: dict[int, str]  # matched contact id -> the address that matched
    messages: list[MessageFacts]
    linked_items: dict[int, str] = field(default_factory=dict)  # item id -> kind
    unlinked_items: set[int] = field(default_factory=set)
    chosen_items: bool = False  # the add-in chose items: they win over rules
    open_reviews: set[int] = field(default_factory=set)  # rule ids with an open review


@dataclass
class ItemFacts:
    id: int
    kind: str
    created: datetime
    activity: datetime  # last_activity_at, else updated
    owner_id: int | None
    title: str
    external_ref: str
    contacts: set[int] = field(default_factory=set)


@dataclass
class Proposal:
    """One link a rule would make, and why."""

    thread_id: int
    item_id: int
    rule: LinkRule
    matched_address: str = ""
    reference: str = ""
    detail: dict = field(default_factory=dict)

    @property
    def why(self) -> str:
        return describe_rule_link(self.rule, self.matched_address, self.reference, self.detail)


@dataclass
class ReviewProposal:
    thread_id: int
    rule: LinkRule
    candidates: list[dict]
    email: EmailMessage | None = None


@dataclass
class Decision:
    links: list[Proposal] = field(default_factory=list)
    reviews: list[ReviewProposal] = field(default_factory=list)
    unmatched: list[tuple[EmailMessage | None, LinkRule, str]] = field(default_factory=list)


def describe_rule_link(rule: LinkRule | None, address: str, reference: str, detail: dict) -> str:
    name = f"rule #{rule.pk} {rule.strategy}" if rule else f"rule {detail.get('rule', '?')}"
    if reference:
        return f"{name}: reference {reference!r} found in the mail"
    how = f"{name}: open {detail.get('kind', 'item')} of contact {detail.get('contact')}"
    if address:
        how += f" ({address})"
    if detail.get("candidates", 0) > 1:
        how += f", rank {detail.get('rank')} of {detail['candidates']} by recent activity"
    return how


def applies(rule: LinkRule, message: MessageFacts, *, respect_auto: bool = True) -> bool:
    if not message.link_items and respect_auto:
        return False  # OrgSettings.auto_generated_mail = STORE: stored, never linked to items
    if rule.skip_auto_generated and message.auto_generated:
        return False
    if rule.direction != LinkRule.Direction.BOTH and message.direction != rule.direction:
        return False
    return not rule.channels or message.channel in rule.channels


def reference_kinds(rules: list[LinkRule]) -> set[str]:
    return {r.kind for r in rules if r.strategy == Strategy.REFERENCE and r.pattern}


_compiled: dict[str, re.Pattern | None] = {}
_literals: dict[str, str] = {}


def compiled(pattern: str) -> re.Pattern | None:
    if pattern not in _compiled:
        try:
            _compiled[pattern] = rx = re.compile(pattern)
        except re.error:
            _compiled[pattern] = None
        else:
            _literals[pattern] = "" if rx.flags & re.IGNORECASE else required_literal(pattern)
    return _compiled[pattern]


def required_literal(pattern: str) -> str:
    """The longest run of literal characters every match of `pattern` contains ("ORD-" for
    a pattern that finds ORD- and six digits between word boundaries), or "". A substring
    test in C rules most texts out before the regex engine runs: a pattern that starts with a
    word boundary or a class gets no literal-prefix scan from `re`, and 20 rules over every
    body head cost more than the rest of the pipeline."""
    from re import _parser  # the stdlib's own parser (re._parser since 3.11)

    best = ""

    def walk(items) -> None:
        nonlocal best
        run = ""
        for op, arg in items:
            if op is _parser.LITERAL:
                run += chr(arg)
                best = max(best, run, key=len)
                continue
            run = ""
            if op is _parser.SUBPATTERN:
                if not arg[1] & re.IGNORECASE:  # (?i:...) matches other cases
                    walk(arg[-1])  # a group's content is required where the group is
            elif op in (_parser.MAX_REPEAT, _parser.MIN_REPEAT) and arg[0] >= 1:
                walk(arg[2])

    try:
        walk(_parser.parse(pattern))
    except Exception:  # no literal: the regex alone decides
        return ""
    return best


def find_references(rule: LinkRule, text: str) -> list[str]:
    rx = compiled(rule.pattern) if rule.pattern else None
    if rx is None:
        return []
    literal = _literals.get(rule.pattern, "")
    if literal and literal not in text:
        return []
    found: list[str] = []
    for m in rx.finditer(text):
        ref = (m.group(1) if rx.groups else m.group(0)) or ""
        ref = ref.strip()[:120]
        if ref and ref not in found:
            found.append(ref)
            if len(found) >= MAX_REFERENCES:
                break
    return found


def thread_references(rules: list[LinkRule], facts: ThreadFacts) -> set[str]:
    refs: set[str] = set()
    for rule in rules:
        if rule.strategy != Strategy.REFERENCE:
            continue
        for m in facts.messages:
            if applies(rule, m):
                refs.update(m.references(rule))
    return refs


def decide_links(
    rules: list[LinkRule],
    facts: ThreadFacts,
    items_by_contact: dict[int, list[ItemFacts]],
    items_by_ref: dict[str, list[ItemFacts]],
) -> Decision:
    """What the ordered rules link this thread to. Per kind, the first rule that decides
    (links, asks for review, or is `none`) settles the kind; a kind the thread already links
    to, and any thread whose items were chosen in the add-in, is left as it is."""
    out = Decision()
    if facts.chosen_items:
        return out
    settled = set(facts.linked_items.values())
    for rule in rules:
        if rule.kind in settled:
            continue
        messages = [m for m in facts.messages if applies(rule, m)]
        if not messages:
            continue
        if rule.strategy == Strategy.NONE:
            settled.add(rule.kind)
            continue
        if rule.strategy == Strategy.REFERENCE:
            if _decide_reference(rule, facts, messages, items_by_ref, out):
                settled.add(rule.kind)
            continue
        candidates = open_items_of(rule.kind, facts, items_by_contact)
        if not candidates:
            continue
        settled.add(rule.kind)
        if rule.strategy == Strategy.SINGLE_OPEN:
            if len(candidates) == 1:
                out.links.append(_proposal(rule, facts, candidates[0], 1, 1))
            elif rule.pk not in facts.open_reviews:
                ranked = rank_items(candidates, facts)
                out.reviews.append(
                    ReviewProposal(facts.thread_id, rule, ranked, messages[-1].email)
                )
        else:  # recent_open(n)
            n = max(1, rule.recent_count or 5)
            chosen = sorted(candidates, key=lambda i: (i.activity, i.id), reverse=True)[:n]
            for rank, item in enumerate(chosen, 1):
                out.links.append(_proposal(rule, facts, item, rank, len(candidates)))
    return out


def _decide_reference(rule, facts, messages, items_by_ref, out: Decision) -> bool:
    linked = False
    for m in messages:
        for ref in m.references(rule):
            items = [
                i
                for i in items_by_ref.get(ref, ())
                if i.kind == rule.kind and i.id not in facts.unlinked_items
            ]
            if not items:
                out.unmatched.append((m.email, rule, ref))
                continue
            for item in items:
                if item.id in facts.linked_items or any(
                    p.item_id == item.id and p.thread_id == facts.thread_id for p in out.links
                ):
                    continue
                facts.linked_items[item.id] = item.kind
                out.links.append(
                    Proposal(
                        facts.thread_id,
                        item.id,
                        rule,
                        reference=ref,
                        detail={"rule": rule.pk, "kind": rule.kind, "reference": True},
                    )
                )
                linked = True
    return linked


def open_items_of(
    kind: str, facts: ThreadFacts, items_by_contact: dict[int, list[ItemFacts]]
) -> list[ItemFacts]:
    """The open items of this kind of the thread's contacts, created no later than the thread
    started (no retroactive linking), minus the ones a person unlinked from it."""
    seen: dict[int, ItemFacts] = {}
    for cid in facts.contacts:
        for item in items_by_contact.get(cid, ()):
            if item.kind != kind or item.id in seen or item.id in facts.unlinked_items:
                continue
            if facts.first_at is not None and item.created > facts.first_at:
                continue
            seen[item.id] = item
    return sorted(seen.values(), key=lambda i: i.id)


def _proposal(rule: LinkRule, facts: ThreadFacts, item: ItemFacts, rank: int, n: int) -> Proposal:
    through = sorted(item.contacts & set(facts.contacts))
    contact = through[0] if through else None
    facts.linked_items[item.id] = item.kind
    return Proposal(
        facts.thread_id,
        item.id,
        rule,
        matched_address=facts.contacts.get(contact, "") if contact else "",
        detail={
            "rule": rule.pk,
            "kind": rule.kind,
            "contact": contact,
            "rank": rank,
            "candidates": n,
        },
    )


_WORD = re.compile(r"[a-z0-9]{4,}")


def rank_items(candidates: list[ItemFacts], facts: ThreadFacts) -> list[dict]:
    """Ranked review candidates, each with its score and the reasons for it: recency of
    activity, thread participants on the item, owned by the capturing user, subject or
    reference overlap."""
    newest = sorted(candidates, key=lambda i: (i.activity, i.id), reverse=True)
    recency_rank = {item.id: n for n, item in enumerate(newest)}
    subject = facts.subject.lower()
    subject_words = set(_WORD.findall(subject))
    text = " ".join(m.text for m in facts.messages).lower()
    out = []
    for item in candidates:
        why = []
        recency = 1.0 / (1 + recency_rank[item.id])
        why.append(
            {
                "code": "recent_activity",
                "text": f"activity {item.activity:%Y-%m-%d} (#{recency_rank[item.id] + 1})",
            }
        )
        shared = len(item.contacts & set(facts.contacts))
        share = shared / max(1, len(facts.contacts))
        why.append(
            {"code": "participants", "text": f"{shared} of {len(facts.contacts)} participants"}
        )
        owner = 1.0 if item.owner_id and item.owner_id in facts.user_ids else 0.0
        if owner:
            why.append({"code": "owner", "text": "owned by the capturing user"})
        overlap = 0.0
        if item.external_ref and item.external_ref.lower() in text:
            overlap = 1.0
            why.append({"code": "reference", "text": "its reference appears in the mail"})
        else:
            common = subject_words & set(_WORD.findall(item.title.lower()))
            if common:
                overlap = min(1.0, len(common) / 3)
                why.append(
                    {"code": "subject", "text": "subject shares " + ", ".join(sorted(common))}
                )
        score = round(0.35 * recency + 0.25 * share + 0.2 * owner + 0.2 * overlap, 4)
        out.append({"item": item.id, "score": score, "why": why})
    out.sort(key=lambda c: (-c["score"], c["item"]))
    return out


# --- loading (shared with the backfill) -----------------------------------------------------


def enabled_rules() -> list[LinkRule]:
    return list(LinkRule.objects.filter(enabled=True).order_by("position", "id"))


def load_items_by_contact(contact_ids: set[int], kinds: set[str]) -> dict[int, list[ItemFacts]]:
    """The open items of these kinds of these contacts, in one query."""
    if not contact_ids or not kinds:
        return {}
    through = Item.contacts.through
    rows = through.objects.filter(
        contact_id__in=sorted(contact_ids), item__status=Item.Status.OPEN, item__kind__in=kinds
    ).values_list(
        "contact_id",
        "item_id",
        "item__kind",
        "item__created",
        "item__last_activity_at",
        "item__updated",
        "item__owner_id",
        "item__title",
        "item__external_ref",
    )
    items: dict[int, ItemFacts] = {}
    out: dict[int, list[ItemFacts]] = defaultdict(list)
    for cid, iid, kind, created, last, updated, owner, title, ref in rows:
        item = items.get(iid)
        if item is None:
            item = items[iid] = ItemFacts(iid, kind, created, last or updated, owner, title, ref)
        item.contacts.add(cid)
        out[cid].append(item)
    return out


def load_items_by_ref(refs: set[str], kinds: set[str]) -> dict[str, list[ItemFacts]]:
    """The open items of these kinds that carry one of these external references."""
    if not refs or not kinds:
        return {}
    out: dict[str, list[ItemFacts]] = defaultdict(list)
    rows = Item.objects.filter(
        external_ref__in=sorted(refs), kind__in=kinds, status=Item.Status.OPEN
    ).values_list(
        "id", "kind", "created", "last_activity_at", "updated", "owner_id", "title", "external_ref"
    )
    for iid, kind, created, last, updated, owner, title, ref in rows:
        out[ref].append(ItemFacts(iid, kind, created, last or updated, owner, title, ref))
    return out


def decide_all(rules: list[LinkRule], facts: list[ThreadFacts]) -> list[Decision]:
    """decide_links for many threads, with the items loaded in two queries for all of them."""
    contact_kinds = {
        r.kind for r in rules if r.strategy in (Strategy.SINGLE_OPEN, Strategy.RECENT_OPEN)
    }
    contacts = {c for f in facts for c in f.contacts}
    by_contact = load_items_by_contact(contacts, contact_kinds)
    refs = set()
    ref_rules = [r for r in rules if r.strategy == Strategy.REFERENCE and compiled(r.pattern)]
    if ref_rules:
        rule_out_references(ref_rules, facts)
        for f in facts:
            refs |= thread_references(ref_rules, f)
    by_ref = load_items_by_ref(refs, reference_kinds(rules))
    return [decide_links(rules, f, by_contact, by_ref) for f in facts]


_gates: dict[tuple[str, ...], re.Pattern] = {}


def rule_out_references(rules: list[LinkRule], facts: list[ThreadFacts]) -> None:
    """One search per message for any of the rules' required literals (an alternation of
    plain strings): a message that has none has no reference for any rule with a literal."""
    with_literal = [r for r in rules if _literals.get(r.pattern)]
    if not with_literal:
        return
    literals = tuple(sorted({_literals[r.pattern] for r in with_literal}))
    gate = _gates.get(literals)
    if gate is None:
        gate = _gates[literals] = re.compile("|".join(map(re.escape, literals)))
    for f in facts:
        for m in f.messages:
            if gate.search(m.text) is None:
                for r in with_literal:
                    m.found.setdefault(r.pattern, [])


def message_text(subject: str, body: str) -> str:
    return f"{subject}\n{body[:REFERENCE_BODY_CHARS]}"


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


def proposal_link(p: Proposal, *, source: str, user_id: int | None = None) -> ThreadLink:
    return ThreadLink(
        thread_id=p.thread_id,
        item_id=p.item_id,
        source=source,
        rule=p.rule,
        strategy=p.rule.strategy,
        matched_address=p.matched_address[:254],
        reference=p.reference,
        detail=p.detail,
        created_by_id=user_id,
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
