"""What the add-in's read pane shows for the open mail or appointment, in one answer.

Built over the services that already decide these things: contact matching by address
(ContactEmail), organizations by registrable domain, the link rules' decision for a thread
made of this one message (capture.link_rules.decide_all, the same code the pipeline runs),
the open items of the matched contacts ranked with their reasons (rank_items), and, when the
mail is already stored and visible to the user, where it is linked (with each link's "why"),
its categories and its open review items.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from capture.link_rules import (
    MessageFacts,
    ThreadFacts,
    decide_all,
    enabled_rules,
    load_items_by_contact,
    message_text,
    rank_items,
)
from capture.links import can_manage_links, describe_link
from capture.mime.ids import normalize_message_id
from capture.models import Category, EmailMessage, Meeting, ReviewItem, ThreadLink
from capture.visibility import visible_emails
from crm.addresses import (
    InvalidAddress,
    is_free_mail_domain,
    normalize_address,
    registrable_domain,
    split_address,
)
from crm.models import Contact, ContactEmail, Item, OrganizationDomain, User, UserAddress
from governance.models import OrgSettings

MAX_ADDRESSES = 50  # as many participants as one lookup matches (peers stop at 50)
MAX_SUGGESTIONS = 10


@dataclass
class LookupQuery:
    addresses: list[str]
    names: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    uid: str = ""
    subject: str = ""
    body: str = ""
    sender: str = ""
    date: datetime | None = None


def contact_label(contact: Contact) -> str:
    return str(contact)


def _contact_json(contact: Contact) -> dict[str, Any]:
    org = contact.organization
    return {
        "id": contact.pk,
        "name": contact_label(contact),
        "organization": {"id": org.pk, "name": org.name} if org else None,
    }


def internal_domains() -> set[str]:
    return {registrable_domain(d) for d in OrgSettings.load().internal_domains or []}


def participants(query: LookupQuery, user: User) -> list[dict[str, Any]]:
    """Each address with its contact match: one, none (with the organization its domain maps
    to, or the one that would be made) or several (the user picks one)."""
    addresses = query.addresses
    by_address: dict[str, list[Contact]] = defaultdict(list)
    for ce in (
        ContactEmail.objects.filter(address__in=addresses)
        .select_related("contact__organization")
        .order_by("contact_id")
    ):
        by_address[ce.address].append(ce.contact)
    domains = {}
    for a in addresses:
        try:
            domains[a] = registrable_domain(split_address(a)[1])
        except ValueError:
            domains[a] = ""
    orgs = {
        d.domain: d.organization
        for d in OrganizationDomain.objects.filter(domain__in=set(domains.values())).select_related(
            "organization"
        )
    }
    internal = internal_domains()
    own = set(UserAddress.objects.filter(user=user).values_list("address", flat=True))
    own.add((user.email or "").lower())
    users = set(User.objects.filter(email__in=addresses).values_list("email", flat=True))
    out = []
    for a in addresses:
        contacts = by_address.get(a, [])
        domain = domains[a]
        is_internal = a in own or a in users or (domain in internal if domain else False)
        org = orgs.get(domain)
        free = bool(domain) and is_free_mail_domain(domain)
        out.append(
            {
                "address": a,
                "name": query.names.get(a, ""),
                "match": "one" if len(contacts) == 1 else ("none" if not contacts else "several"),
                "contacts": [_contact_json(c) for c in contacts],
                "internal": is_internal,
                "domain": domain,
                "organization": {"id": org.pk, "name": org.name} if org else None,
                # what creating the contact here would do with its organization
                "new_organization": (
                    None if org or free or is_internal or not domain else organization_name(domain)
                ),
            }
        )
    return out


def organization_name(domain: str) -> str:
    """A name for an organization made from its domain ("acme-tools.co.uk" -> "Acme Tools")."""
    label = domain.split(".")[0]
    return " ".join(w.capitalize() for w in label.replace("_", "-").split("-") if w) or domain


def suggestions(
    query: LookupQuery, user: User, contact_ids: dict[int, str], thread_id: int = 0
) -> list[dict[str, Any]]:
    """Records to link: what the link rules would link (and why), then the matched contacts'
    open items ranked with their reasons (the review queue's ranking)."""
    facts = ThreadFacts(
        thread_id=thread_id,
        first_at=query.date or timezone.now(),
        subject=query.subject,
        user_ids={user.pk},
        contacts=dict(contact_ids),
        messages=[
            MessageFacts(
                direction=EmailMessage.Direction.UNKNOWN,
                channel="addin",
                auto_generated="",
                link_items=True,
                text=message_text(query.subject, query.body),
            )
        ],
    )
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    rules = enabled_rules()
    decision = decide_all(rules, [facts])[0] if rules else None
    if decision is not None:
        for p in decision.links:
            if p.item_id not in seen:
                seen.add(p.item_id)
                out.append({"item": p.item_id, "source": "rule", "why": [p.why], "score": None})
        for review in decision.reviews:
            for c in review.candidates:
                if c["item"] not in seen:
                    seen.add(c["item"])
                    out.append(
                        {
                            "item": c["item"],
                            "source": "review",
                            "why": [w["text"] for w in c["why"]],
                            "score": c["score"],
                        }
                    )
    by_contact = load_items_by_contact(set(contact_ids), set(Item.Kind.values))
    candidates = {i.id: i for items in by_contact.values() for i in items}
    for c in rank_items(list(candidates.values()), facts):
        if c["item"] not in seen:
            seen.add(c["item"])
            out.append(
                {
                    "item": c["item"],
                    "source": "ranked",
                    "why": [w["text"] for w in c["why"]],
                    "score": c["score"],
                }
            )
    out = out[:MAX_SUGGESTIONS]
    items = Item.objects.in_bulk([s["item"] for s in out])
    for s in out:
        item = items[s["item"]]
        s.update(kind=item.kind, title=item.title, status=item.status)
    return out


def _link_json(link: ThreadLink) -> dict[str, Any]:
    target = link.item or link.contact or link.organization
    kind = "item" if link.item_id else ("contact" if link.contact_id else "organization")
    return {
        "id": link.pk,
        "kind": kind,
        "target": getattr(target, "pk", None),
        "label": str(target) if target else "",
        "source": link.source,
        "why": describe_link(link),
    }


def saved_state(email: EmailMessage, user: User) -> dict[str, Any]:
    """Where a stored mail is linked (and why), its categories, its open reviews."""
    thread = email.thread
    links = (
        ThreadLink.objects.filter(thread=thread)
        .select_related("rule", "created_by", "item", "contact", "organization")
        .order_by("id")
    )
    reviews = list(
        ReviewItem.objects.filter(
            thread=thread, status=ReviewItem.Status.OPEN, kind=ReviewItem.Kind.AMBIGUOUS_ITEM
        ).order_by("id")
    )
    # candidates are item ids; detail["ranked"] holds each one's score and why
    ranked = {
        r.pk: [c for c in (r.detail or {}).get("ranked", []) if isinstance(c, dict)]
        for r in reviews
    }
    titles = dict(
        Item.objects.filter(
            pk__in=[c for r in reviews for c in r.candidates if isinstance(c, int)]
        ).values_list("pk", "title")
    )
    return {
        "email": email.pk,
        "thread": thread.pk,
        "subject": email.subject,
        "categories": list(email.categories or []),
        "private": thread.private,
        "links": [_link_json(link) for link in links],
        # the review queue's open questions about this thread: which open item, ranked, why
        "reviews": [
            {
                "id": r.pk,
                "kind": r.kind,
                "candidates": [
                    {
                        "item": c["item"],
                        "title": titles[c["item"]],
                        "score": c.get("score"),
                        "why": [w.get("text", "") for w in c.get("why", [])],
                    }
                    for c in ranked[r.pk]
                    if c.get("item") in titles
                ],
            }
            for r in reviews
        ],
        "can_manage_links": can_manage_links(user, thread),
    }


def stored_email(user: User, query: LookupQuery) -> EmailMessage | None:
    """The stored message the pane shows (by Message-ID, or the appointment's UID), if the
    user may see it."""
    visible = visible_emails(user).select_related("thread")
    if query.uid:
        meeting = Meeting.objects.filter(uid=query.uid[:255]).first()
        if meeting is None:
            return None
        return visible.filter(meeting_messages__meeting=meeting).order_by("-date", "-id").first()
    if query.message_id:
        mid = normalize_message_id(query.message_id)
        if mid:
            return visible.filter(message_id=mid).first()
    return None


def meeting_state(email: EmailMessage | None, uid: str) -> dict[str, Any] | None:
    if not uid or email is None:
        return None
    meeting = Meeting.objects.filter(uid=uid[:255]).first()
    if meeting is None:
        return None
    return {
        "id": meeting.pk,
        "uid": meeting.uid,
        "summary": meeting.summary,
        "start": meeting.start,
        "end": meeting.end,
        "rrule": meeting.rrule,
        "status": meeting.status,
        "sequence": meeting.sequence,
    }


def lookup(query: LookupQuery, user: User) -> dict[str, Any]:
    people = participants(query, user)
    email = stored_email(user, query)
    contact_ids = {}
    for p in people:
        if p["match"] == "one" and not p["internal"]:
            contact_ids.setdefault(p["contacts"][0]["id"], p["address"])
    active = list(
        Category.objects.filter(active=True)
        .order_by("order", "name")
        .values_list("name", flat=True)
    )
    return {
        "participants": people,
        "suggestions": suggestions(
            query, user, contact_ids, thread_id=email.thread_id if email else 0
        ),
        "categories": active,
        "saved": saved_state(email, user) if email else None,
        "meeting": meeting_state(email, query.uid),
    }


def clean_addresses(values: list[str]) -> tuple[list[str], list[str]]:
    """(normalised unique addresses, the ones that are not addresses)."""
    good: list[str] = []
    bad: list[str] = []
    for v in values:
        v = v.strip()
        if not v:
            continue
        try:
            a = normalize_address(v)
        except InvalidAddress:
            bad.append(v[:100])
            continue
        if a not in good:
            good.append(a)
    return good, bad


__all__ = ["MAX_ADDRESSES", "LookupQuery", "clean_addresses", "lookup"]
