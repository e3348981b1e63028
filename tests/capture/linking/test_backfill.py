"""Backfill of one rule or one item: a preview (which threads, why) before it runs; the run
is audited; re-matching runs the rules through it."""

from __future__ import annotations

import pytest

from capture.links import preview_backfill, run_backfill
from capture.models import LinkRule, ReviewItem, ThreadLink
from capture.rematch import rematch_addresses
from crm.models import ContactEmail, Item
from governance.models import AuditEvent
from tests.capture.linking.helpers import TOM, captured, item, linked_items, rule
from tests.factories import make_contact

pytestmark = pytest.mark.django_db
S = LinkRule.Strategy


def test_a_backfill_for_one_item_previews_the_threads_and_why_then_links_them_audited():
    tom = make_contact(emails=(TOM,))
    first = captured(message_id="<a@globex.co.uk>", subject="one")
    second = captured(message_id="<b@globex.co.uk>", subject="two")
    deal = item(tom)
    rule(S.SINGLE_OPEN)
    preview = preview_backfill(item=deal)
    assert {p.thread_id for p in preview.links} == {first.thread_id, second.thread_id}
    assert all(TOM in p.why for p in preview.links)
    assert linked_items(first) == set()  # a preview writes nothing
    assert run_backfill(item=deal, actor="admin", channel="cli") == 2
    assert linked_items(first) == linked_items(second) == {deal.pk}
    event = AuditEvent.objects.get(action="links.backfilled")
    assert (event.object_type, event.detail) == ("crm.item", {"threads": 2, "links": 2})


def test_a_backfill_never_overrides_records_chosen_in_the_add_in():
    tom = make_contact(emails=(TOM,))
    chosen = item(tom, kind=Item.Kind.LEAD)
    deal = item(tom)
    r = rule(S.SINGLE_OPEN)
    from capture.intake import RawSpec, store_raw_message
    from capture.pipeline import process_raw_message
    from tests.capture.pipeline.helpers import make_mail

    raw = store_raw_message(
        RawSpec(data=make_mail(), channel="addin", options={"links": {"items": [chosen.pk]}}),
        enqueue=False,
    )
    email_id = process_raw_message(raw.pk).email_id
    links = ThreadLink.objects.filter(email_id=email_id, item__isnull=False)
    assert {link.item_id for link in links} == {chosen.pk}  # the add-in's choice wins
    assert preview_backfill(rule=r).links == []
    assert deal.pk not in {link.item_id for link in links}


def test_rematching_an_address_runs_the_rules_for_the_threads_it_touches():
    email = captured()  # the sender is no contact yet
    tom = make_contact()
    deal = item(tom)
    rule(S.SINGLE_OPEN)
    ContactEmail.objects.create(contact=tom, address=TOM, is_primary=True)
    assert rematch_addresses([TOM]) == 1
    assert linked_items(email) == {deal.pk}
    link = ThreadLink.objects.get(item=deal)
    assert link.source == ThreadLink.Source.BACKFILL and link.matched_address == TOM
    assert not ReviewItem.objects.exists()
