"""The link rule engine (docs/linking.md): what the ordered rules link a thread to, decided
from plain facts (ThreadFacts, ItemFacts) so the pipeline (capture/linking.py, per batch)
and the backfill (capture/links.py, over stored threads) decide alike; the bulk loads of
the open items both need; the ranking of review candidates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from capture.models import EmailMessage, LinkRule, ThreadLink
from crm.models import Item

Strategy = LinkRule.Strategy
#: How much of a body a `reference` rule reads: references sit in the subject or near the top
#: (the quoted history below is the earlier mail, read when it was captured), and a regex
#: over every 50 KB body for 20 rules would cost more than the rest of linking.
REFERENCE_BODY_CHARS = 4_000
MAX_REFERENCES = 20  # per message and rule


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
