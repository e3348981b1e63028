"""Link services the doors call: link rules, manual link and unlink (sticky), the review
queue, the backfill of a rule or an item (docs/linking.md). Every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from capture.link_rules import (
    MessageFacts,
    Proposal,
    ThreadFacts,
    compiled,
    decide_all,
    describe_rule_link,
    enabled_rules,
    message_text,
    proposal_link,
)
from capture.linking import load_unlinks, sync_link_dates
from capture.models import (
    Capture,
    EmailMessage,
    LinkRule,
    Participant,
    ReviewItem,
    Thread,
    ThreadLink,
    ThreadUnlink,
)
from capture.retention import on_links_changed
from crm.models import Contact, Item, Organization, User
from governance.audit import record_event
from governance.models import OrgSettings

KINDS = {"contact": Contact, "organization": Organization, "item": Item}


@dataclass(frozen=True)
class Target:
    """A record a thread links to: ("contact" | "organization" | "item", id)."""

    kind: str
    id: int

    @property
    def field(self) -> str:
        return f"{self.kind}_id"

    @classmethod
    def of(cls, data: dict[str, Any]) -> Target:
        """The one target named in `data` ({"item": 5}); ValidationError otherwise."""
        given = [(k, data[k]) for k in KINDS if data.get(k) not in (None, "")]
        if len(given) != 1:
            raise ValidationError("Name exactly one of contact, organization, item.")
        kind, value = given[0]
        try:
            pk = int(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{kind} must be an id.") from None
        if not KINDS[kind].objects.filter(pk=pk).exists():
            raise ValidationError(f"No such {kind}: {pk}.")
        return cls(kind, pk)


def audit(action: str, obj: Any, *, actor: Any, channel: str, address: str = "", **detail) -> None:
    record_event(action, actor=actor, obj=obj, channel=channel, address=address, detail=detail)


# --- link rules -----------------------------------------------------------------------------


def validate_link_rule(rule: LinkRule) -> None:
    """Raise ValidationError for a rule that cannot run (a reference rule's bad pattern)."""
    if rule.strategy == LinkRule.Strategy.REFERENCE:
        if not rule.pattern:
            raise ValidationError({"pattern": "A reference rule needs a pattern."})
        if compiled(rule.pattern) is None:
            raise ValidationError({"pattern": "Not a valid regular expression."})
    if rule.strategy == LinkRule.Strategy.RECENT_OPEN and not 1 <= rule.recent_count <= 100:
        raise ValidationError({"recent_count": "Between 1 and 100."})
    channels = {c for c, _ in Capture._meta.get_field("channel").choices}
    bad = [c for c in rule.channels or [] if c not in channels]
    if bad or not isinstance(rule.channels, list):
        raise ValidationError({"channels": f"Unknown channels: {bad}."})


def save_link_rule(
    rule: LinkRule, *, actor: Any, channel: str, address: str = "", changed: list[str] = ()
) -> LinkRule:
    """Validate, save and audit a link rule (created or changed)."""
    validate_link_rule(rule)
    created = rule.pk is None
    with transaction.atomic():
        rule.save()
        audit(
            "link_rule.created" if created else "link_rule.changed",
            rule,
            actor=actor,
            channel=channel,
            address=address,
            kind=rule.kind,
            strategy=rule.strategy,
            enabled=rule.enabled,
            fields=sorted(changed),
        )
    return rule


def delete_link_rule(rule: LinkRule, *, actor: Any, channel: str, address: str = "") -> None:
    """Delete and audit a link rule (its links stay, with the rule's strategy)."""
    with transaction.atomic():
        audit("link_rule.deleted", rule, actor=actor, channel=channel, address=address)
        rule.delete()


# --- manual link and unlink -----------------------------------------------------------------


def can_manage_links(user: User, thread: Thread) -> bool:
    """The thread's owner and admins may link and unlink it."""
    return bool(user.is_admin_role or (thread.owner_id and thread.owner_id == user.pk))


def link_thread(
    thread: Thread, target: Target, *, user: User, actor: Any, channel: str, address: str = ""
) -> ThreadLink:
    """Link a thread to any record by hand (owner or admin; audited). A manual link lifts a
    sticky unlink of the same record."""
    if not can_manage_links(user, thread):
        raise PermissionDenied("Only the thread's owner or an admin may link it.")
    with transaction.atomic():
        ThreadUnlink.objects.filter(thread=thread, **{target.field: target.id}).delete()
        link, created = ThreadLink.objects.get_or_create(
            thread=thread,
            **{target.field: target.id},
            defaults={
                "source": ThreadLink.Source.MANUAL,
                "created_by": user,
                "last_at": thread.last_at,  # its place on the record's timeline
            },
        )
        if created:
            audit(
                "thread.linked",
                thread,
                actor=actor,
                channel=channel,
                address=address,
                target=target.kind,
                target_id=target.id,
                source=link.source,
            )
            on_links_changed([thread.pk])
    return link


def unlink_thread(
    thread: Thread, target: Target, *, user: User, actor: Any, channel: str, address: str = ""
) -> bool:
    """Remove a link (owner or admin; audited) and remember it: no rule, re-match or backfill
    links the thread to that record again. Returns whether a link was removed."""
    if not can_manage_links(user, thread):
        raise PermissionDenied("Only the thread's owner or an admin may unlink it.")
    with transaction.atomic():
        removed, _ = ThreadLink.objects.filter(thread=thread, **{target.field: target.id}).delete()
        ThreadUnlink.objects.get_or_create(
            thread=thread, **{target.field: target.id}, defaults={"removed_by": user}
        )
        audit(
            "thread.unlinked",
            thread,
            actor=actor,
            channel=channel,
            address=address,
            target=target.kind,
            target_id=target.id,
            removed=bool(removed),
        )
        if removed:
            on_links_changed([thread.pk])
    return bool(removed)


def describe_link(link: ThreadLink) -> str:
    """Why this link exists, in a sentence (admin and API)."""
    source = ThreadLink.Source
    who = f" by {link.created_by}" if link.created_by_id else ""
    if link.source in (source.RULE, source.BACKFILL):
        text = describe_rule_link(link.rule, link.matched_address, link.reference, link.detail)
        if link.rule_id is None and link.strategy:
            text = text.replace("rule ", f"deleted rule ({link.strategy}) ", 1)
        return ("backfill, " if link.source == source.BACKFILL else "") + text + who
    if link.source == source.PARTICIPANT:
        return f"participant {link.matched_address or '(address not recorded)'} matched"
    if link.source == source.ADDIN:
        return f"chosen in the add-in{who}"
    if link.source == source.REVIEW:
        return f"chosen in the review queue{who} (review {link.detail.get('review')})"
    if link.source == source.MANUAL:
        return f"linked by hand{who}"
    return link.get_source_display() + who


# --- the review queue -----------------------------------------------------------------------


def resolve_review_items(
    reviews: list[ReviewItem],
    target: Target | None,
    *,
    user: User,
    actor: Any,
    channel: str,
    address: str = "",
) -> int:
    """Resolve open review items: link each thread to `target` (or, without one, to the
    top-ranked candidate), close the other open reviews of that thread it settles, audit.
    Returns how many were resolved."""
    done = 0
    with transaction.atomic():
        for review in ReviewItem.objects.select_for_update().filter(
            pk__in=[r.pk for r in reviews], status=ReviewItem.Status.OPEN
        ):
            chosen = target or _top_candidate(review)
            if chosen is None or review.thread_id is None:
                continue
            _link_for_review(review, chosen, user)
            if review.participant_id and chosen.kind == "contact":
                Participant.objects.filter(pk=review.participant_id).update(
                    match=Participant.Match.MATCHED, contact_id=chosen.id
                )
            settled = _settled_reviews(review, chosen)
            now = timezone.now()
            ReviewItem.objects.filter(pk__in=[review.pk, *settled]).update(
                status=ReviewItem.Status.RESOLVED, resolved_by=user, resolved_at=now, updated=now
            )
            audit(
                "review.resolved",
                review,
                actor=actor,
                channel=channel,
                address=address,
                target=chosen.kind,
                target_id=chosen.id,
                closed=len(settled),
            )
            done += 1
    return done


def dismiss_review_items(
    reviews: list[ReviewItem], *, user: User, actor: Any, channel: str, address: str = ""
) -> int:
    """Dismiss open review items (nothing is linked); audited. Returns how many."""
    with transaction.atomic():
        ids = list(
            ReviewItem.objects.filter(
                pk__in=[r.pk for r in reviews], status=ReviewItem.Status.OPEN
            ).values_list("pk", flat=True)
        )
        now = timezone.now()
        ReviewItem.objects.filter(pk__in=ids).update(
            status=ReviewItem.Status.DISMISSED, resolved_by=user, resolved_at=now, updated=now
        )
        for pk in ids:
            record_event(
                "review.dismissed",
                actor=actor,
                object_type="capture.reviewitem",
                object_id=pk,
                channel=channel,
                address=address,
            )
    return len(ids)


def _top_candidate(review: ReviewItem) -> Target | None:
    if not review.candidates:
        return None
    kind = "contact" if review.kind == ReviewItem.Kind.AMBIGUOUS_CONTACT else "item"
    if review.kind not in (ReviewItem.Kind.AMBIGUOUS_CONTACT, ReviewItem.Kind.AMBIGUOUS_ITEM):
        return None
    return Target(kind, int(review.candidates[0]))


def _link_for_review(review: ReviewItem, target: Target, user: User) -> None:
    assert review.thread_id is not None
    ThreadUnlink.objects.filter(thread_id=review.thread_id, **{target.field: target.id}).delete()
    ThreadLink.objects.get_or_create(
        thread_id=review.thread_id,
        **{target.field: target.id},
        defaults={
            "source": ThreadLink.Source.REVIEW,
            "created_by": user,
            "detail": {"review": review.pk},
        },
    )
    if target.kind == "contact":
        org = Contact.objects.filter(pk=target.id).values_list("organization_id", flat=True).first()
        if org:
            ThreadLink.objects.get_or_create(
                thread_id=review.thread_id,
                organization_id=org,
                defaults={"source": ThreadLink.Source.REVIEW, "created_by": user},
            )
    sync_link_dates({review.thread_id})  # their place on the records' timelines


def _settled_reviews(review: ReviewItem, target: Target) -> list[int]:
    """Other open reviews of the thread this choice answers: the same ambiguous address, or
    another ambiguous choice of an item of the same kind."""
    others = ReviewItem.objects.filter(
        thread_id=review.thread_id, status=ReviewItem.Status.OPEN, kind=review.kind
    ).exclude(pk=review.pk)
    if review.kind == ReviewItem.Kind.AMBIGUOUS_CONTACT and review.participant_id:
        address = review.participant.address
        return list(others.filter(participant__address=address).values_list("pk", flat=True))
    if review.kind == ReviewItem.Kind.AMBIGUOUS_ITEM and target.kind == "item":
        kind = Item.objects.filter(pk=target.id).values_list("kind", flat=True).first()
        return [
            pk for pk, detail in others.values_list("pk", "detail") if detail.get("kind") == kind
        ]
    return []


# --- backfill -------------------------------------------------------------------------------

BACKFILL_LIMIT = 2000  # threads one backfill considers


def backfill_threads(*, rule: LinkRule | None = None, item: Item | None = None) -> list[int]:
    """The stored threads a backfill for one rule or one item looks at: the threads linked
    to the item's contacts, or to the contacts that have open items of the rule's kind."""
    if item is not None:
        contacts = list(item.contacts.values_list("pk", flat=True))
    elif rule is not None:
        contacts = list(
            Item.contacts.through.objects.filter(
                item__kind=rule.kind, item__status=Item.Status.OPEN
            ).values_list("contact_id", flat=True)[:BACKFILL_LIMIT]
        )
    else:
        return []
    return list(
        ThreadLink.objects.filter(contact_id__in=contacts)
        .values_list("thread_id", flat=True)
        .distinct()
        .order_by("-thread_id")[:BACKFILL_LIMIT]
    )


def thread_facts(thread_ids: list[int]) -> list[ThreadFacts]:
    """ThreadFacts of stored threads: contacts from their participants, their messages,
    links, unlinks and open item reviews (a handful of queries for all of them)."""
    threads = {
        t.pk: t
        for t in Thread.objects.filter(pk__in=thread_ids).only(
            "id", "first_at", "subject", "owner_id"
        )
    }
    facts = {
        pk: ThreadFacts(pk, t.first_at, t.subject, {t.owner_id} - {None}, {}, [])
        for pk, t in threads.items()
    }
    for tid, cid, address in Participant.objects.filter(
        email__thread_id__in=list(facts), match=Participant.Match.MATCHED, contact__isnull=False
    ).values_list("email__thread_id", "contact_id", "address"):
        facts[tid].contacts.setdefault(cid, address)
    channels = dict(
        Capture.objects.filter(email__thread_id__in=list(facts)).values_list("email_id", "channel")
    )
    for email in EmailMessage.objects.filter(thread_id__in=list(facts)).only(
        "id", "thread_id", "direction", "auto_generated", "subject", "text_body"
    ):
        facts[email.thread_id].messages.append(
            MessageFacts(
                direction=email.direction,
                channel=channels.get(email.pk, ""),
                auto_generated=email.auto_generated,
                link_items=True,
                text=message_text(email.subject, email.text_body or ""),
                email=email,
            )
        )
    for tid, cid, iid, kind, source in ThreadLink.objects.filter(
        thread_id__in=list(facts)
    ).values_list("thread_id", "contact_id", "item_id", "item__kind", "source"):
        if iid:
            facts[tid].linked_items[iid] = kind
            facts[tid].chosen_items |= source == ThreadLink.Source.ADDIN
        elif cid:
            facts[tid].contacts.setdefault(cid, "")
    for tid, gone in load_unlinks(list(facts)).items():
        facts[tid].unlinked_items.update(i for k, i in gone if k == "item")
        for kind, pk in gone:
            if kind == "contact":
                facts[tid].contacts.pop(pk, None)
    return list(facts.values())


def _auto_generated_policy() -> bool:
    """Whether auto-generated mail may link to items (OrgSettings: store, do not link)."""
    return OrgSettings.load().auto_generated_mail == OrgSettings.AutoGenerated.LINK


@dataclass
class BackfillPreview:
    links: list[Proposal]
    threads: int

    def rows(self) -> list[dict]:
        return [
            {"thread": p.thread_id, "item": p.item_id, "rule": p.rule.pk, "why": p.why}
            for p in self.links
        ]


def preview_backfill(
    *, rule: LinkRule | None = None, item: Item | None = None, thread_ids: list[int] | None = None
) -> BackfillPreview:
    """Which stored threads the rules would link now, and why (nothing is written)."""
    rules = [rule] if rule is not None else enabled_rules()
    if item is not None:
        rules = [r for r in rules if r.kind == item.kind]
    if not rules:
        return BackfillPreview([], 0)
    ids = thread_ids if thread_ids is not None else backfill_threads(rule=rule, item=item)
    facts = thread_facts(ids)
    if not _auto_generated_policy():
        for f in facts:
            for m in f.messages:
                m.link_items = not m.auto_generated
    links = []
    for decision in decide_all(rules, facts):
        links += [p for p in decision.links if item is None or p.item_id == item.pk]
    return BackfillPreview(links, len(facts))


def run_backfill(
    *,
    rule: LinkRule | None = None,
    item: Item | None = None,
    thread_ids: list[int] | None = None,
    actor: Any,
    channel: str,
    address: str = "",
    user: User | None = None,
) -> int:
    """Write what preview_backfill shows (links of source "backfill"); audited. Sticky
    unlinks are never re-created. Returns how many links were made."""
    with transaction.atomic():
        preview = preview_backfill(rule=rule, item=item, thread_ids=thread_ids)
        links = [
            proposal_link(p, source=ThreadLink.Source.BACKFILL, user_id=user.pk if user else None)
            for p in preview.links
        ]
        ThreadLink.objects.bulk_create(links, ignore_conflicts=True)
        sync_link_dates({link.thread_id for link in links})  # their place on timelines
        record_event(
            "links.backfilled",
            actor=actor,
            obj=rule or item,
            object_type="" if (rule or item) else "capture.thread",
            channel=channel,
            address=address,
            detail={"threads": preview.threads, "links": len(links)},
        )
        on_links_changed({link.thread_id for link in links})
    return len(links)
