"""Helpers for the linking tests: open items that existed before the mail, rules, capture."""

from __future__ import annotations

from datetime import UTC, datetime

from capture.models import EmailMessage, LinkRule, RawMessage, ThreadLink
from crm.models import Item
from tests.capture.pipeline.helpers import capture, make_mail
from tests.factories import make_item

BEFORE = datetime(2025, 1, 1, tzinfo=UTC)  # items exist before the mail (2025-03-24)
TOM = "tom.buyer@globex.co.uk"
SAM = "sam.seller@mailwarden-demo.com"


def item(*contacts, kind=Item.Kind.DEAL, created=BEFORE, activity=None, **fields) -> Item:
    """An item of these contacts, created at `created` (before the test mail by default)."""
    made = make_item(contacts=contacts, kind=kind, **fields)
    Item.objects.filter(pk=made.pk).update(created=created, last_activity_at=activity)
    made.refresh_from_db()
    return made


def rule(strategy=LinkRule.Strategy.SINGLE_OPEN, kind=Item.Kind.DEAL, **fields) -> LinkRule:
    return LinkRule.objects.create(strategy=strategy, kind=kind, **fields)


def captured(data: bytes | None = None, user=None, **mail) -> EmailMessage:
    raw, outcome = capture(data or make_mail(**mail), user_id=user.pk if user else None)
    assert outcome.status == RawMessage.Status.PROCESSED, (raw.reason_code, raw.traceback)
    return EmailMessage.objects.get(pk=outcome.email_id)


def item_links(email: EmailMessage) -> list[ThreadLink]:
    return list(ThreadLink.objects.filter(thread_id=email.thread_id, item__isnull=False))


def linked_items(email: EmailMessage) -> set[int]:
    return {link.item_id for link in item_links(email)}
