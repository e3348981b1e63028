"""Link rules in the pipeline: single_open, recent_open(n), reference(pattern), none; their
direction, channel and auto-generated options; order; the links' "why"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from capture.intake import RawSpec, store_raw_messages
from capture.link_rules import required_literal
from capture.links import describe_link
from capture.models import LinkRule, RawMessage, ReviewItem, ThreadLink, UnmatchedReference
from capture.pipeline import process_raw_messages
from crm.models import Item
from governance.models import OrgSettings
from tests.capture.linking.helpers import SAM, TOM, captured, item, item_links, linked_items, rule
from tests.capture.pipeline.helpers import make_mail
from tests.factories import make_contact, make_user, set_org_settings

pytestmark = pytest.mark.django_db
S = LinkRule.Strategy


def test_single_open_links_the_one_open_deal_of_the_senders_contact_and_says_why():
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    r = rule(S.SINGLE_OPEN)
    email = captured()
    [link] = item_links(email)
    assert (link.item_id, link.source, link.rule_id, link.strategy) == (
        deal.pk,
        ThreadLink.Source.RULE,
        r.pk,
        S.SINGLE_OPEN,
    )
    assert link.matched_address == TOM
    assert link.detail["contact"] == tom.pk
    assert "single_open" in describe_link(link) and TOM in describe_link(link)


def test_single_open_with_several_open_deals_asks_for_review_with_ranked_candidates():
    tom = make_contact(emails=(TOM,))
    older = item(tom, activity=datetime(2025, 2, 1, tzinfo=UTC), title="Old pumps")
    newer = item(tom, activity=datetime(2025, 3, 1, tzinfo=UTC), title="April delivery")
    rule(S.SINGLE_OPEN)
    email = captured(subject="Delivery schedule for April")
    assert linked_items(email) == set()
    review = ReviewItem.objects.get(kind=ReviewItem.Kind.AMBIGUOUS_ITEM)
    assert review.thread_id == email.thread_id
    assert review.candidates == [newer.pk, older.pk]
    top = review.detail["ranked"][0]
    assert top["item"] == newer.pk and top["score"] > review.detail["ranked"][1]["score"]
    assert {w["code"] for w in top["why"]} >= {"recent_activity", "participants", "subject"}


def test_single_open_without_open_deals_links_nothing_and_asks_nothing():
    make_contact(emails=(TOM,))
    rule(S.SINGLE_OPEN)
    email = captured()
    assert linked_items(email) == set()
    assert not ReviewItem.objects.filter(kind=ReviewItem.Kind.AMBIGUOUS_ITEM).exists()


def test_recent_open_links_the_n_most_recently_active_open_items():
    tom = make_contact(emails=(TOM,))
    a = item(tom, activity=datetime(2025, 1, 5, tzinfo=UTC))
    b = item(tom, activity=datetime(2025, 3, 1, tzinfo=UTC))
    c = item(tom, activity=datetime(2025, 2, 1, tzinfo=UTC))
    rule(S.RECENT_OPEN, recent_count=2)
    email = captured()
    assert linked_items(email) == {b.pk, c.pk}
    assert a.pk not in linked_items(email)
    ranks = {link.item_id: link.detail["rank"] for link in item_links(email)}
    assert ranks == {b.pk: 1, c.pk: 2}


def test_recent_open_defaults_to_five():
    tom = make_contact(emails=(TOM,))
    for _ in range(7):
        item(tom)
    rule(S.RECENT_OPEN)
    assert len(linked_items(captured())) == 5


def test_a_reference_in_the_subject_links_the_item_that_carries_it():
    make_contact(emails=(TOM,))
    ticket = item(kind=Item.Kind.TICKET, external_ref="TCK-4711")
    rule(S.REFERENCE, kind=Item.Kind.TICKET, pattern=r"\b(TCK-\d+)\b")
    email = captured(subject="Re: [TCK-4711] pump broken")
    [link] = item_links(email)
    assert (link.item_id, link.reference) == (ticket.pk, "TCK-4711")
    assert "TCK-4711" in describe_link(link)


def test_a_reference_in_the_body_links_and_one_that_matches_no_item_is_recorded_on_the_message():
    order = item(kind=Item.Kind.PROJECT, external_ref="PO-100")
    r = rule(S.REFERENCE, kind=Item.Kind.PROJECT, pattern=r"PO-\d+")
    email = captured(body="About PO-100 and PO-999, see attached.")
    assert linked_items(email) == {order.pk}
    [unmatched] = UnmatchedReference.objects.all()
    assert (unmatched.email_id, unmatched.rule_id, unmatched.reference) == (
        email.pk,
        r.pk,
        "PO-999",
    )


def test_an_outbound_only_rule_does_not_link_inbound_mail():
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    rule(S.SINGLE_OPEN, direction=LinkRule.Direction.OUTBOUND)
    inbound = captured()
    assert linked_items(inbound) == set()
    outbound = captured(from_=SAM, to=TOM, message_id="<out@mailwarden-demo.com>", subject="x")
    assert linked_items(outbound) == {deal.pk}


def test_a_rule_limited_to_a_channel_ignores_mail_from_other_channels():
    tom = make_contact(emails=(TOM,))
    item(tom)
    rule(S.SINGLE_OPEN, channels=[RawMessage.Channel.IMAP])
    assert linked_items(captured()) == set()  # captured through the API channel


@pytest.mark.parametrize(
    ("policy", "skip", "links"),
    [
        (OrgSettings.AutoGenerated.STORE, False, False),
        (OrgSettings.AutoGenerated.LINK, True, False),
        (OrgSettings.AutoGenerated.LINK, False, True),
    ],
)
def test_auto_generated_mail_links_to_items_only_when_the_org_and_the_rule_allow(
    policy, skip, links
):
    set_org_settings(auto_generated_mail=policy)
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    rule(S.SINGLE_OPEN, skip_auto_generated=skip)
    email = captured(extra_headers=("Auto-Submitted: auto-generated",))
    assert email.auto_generated
    assert linked_items(email) == ({deal.pk} if links else set())
    # "store, do not link" still links the contact: only items are withheld
    assert ThreadLink.objects.filter(thread_id=email.thread_id, contact=tom).exists()


def test_rules_run_in_order_and_the_first_that_decides_settles_the_kind():
    tom = make_contact(emails=(TOM,))
    by_ref = item(tom, external_ref="Q-7")
    item(tom)
    first = rule(S.REFERENCE, pattern=r"Q-\d+", position=1)
    rule(S.RECENT_OPEN, position=2)
    email = captured(subject="Quote Q-7")
    assert linked_items(email) == {by_ref.pk}
    assert item_links(email)[0].rule_id == first.pk


def test_a_none_rule_stops_later_rules_of_its_kind_but_not_other_kinds():
    tom = make_contact(emails=(TOM,))
    item(tom)
    lead = item(tom, kind=Item.Kind.LEAD)
    rule(S.NONE, position=1)
    rule(S.SINGLE_OPEN, position=2)
    rule(S.SINGLE_OPEN, kind=Item.Kind.LEAD, position=3)
    assert linked_items(captured()) == {lead.pk}


def test_a_disabled_rule_does_nothing():
    tom = make_contact(emails=(TOM,))
    item(tom)
    rule(S.SINGLE_OPEN, enabled=False)
    assert linked_items(captured()) == set()


def _batch_queries(n: int, tag: str) -> int:
    mails = [
        make_mail(message_id=f"<{tag}{i}@globex.co.uk>", subject=f"Order {i} PO-{i}")
        for i in range(n)
    ]
    user = make_user()
    raws = store_raw_messages(
        [RawSpec(data=m, channel=RawMessage.Channel.API, user_id=user.pk) for m in mails],
        enqueue=False,
    )
    with CaptureQueriesContext(connection) as ctx:
        outcomes = process_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {RawMessage.Status.PROCESSED}
    return len(ctx.captured_queries)


def test_twenty_rules_cost_a_few_queries_a_batch_not_one_per_message_or_rule():
    tom = make_contact(emails=(TOM,))
    for i in range(3):
        item(tom, external_ref=f"PO-{i}")
    _batch_queries(10, "warm")
    without = _batch_queries(10, "a")
    kinds = list(Item.Kind)
    for i in range(20):
        strategy = (S.REFERENCE, S.RECENT_OPEN, S.SINGLE_OPEN, S.NONE)[i % 4]
        rule(strategy, kind=kinds[i // 5], pattern=r"PO-\d+", position=i)
    with_rules = _batch_queries(10, "b")
    assert ThreadLink.objects.filter(source=ThreadLink.Source.RULE).count() >= 3
    assert with_rules <= without + 8


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        (r"\b(ORD-\d{6})\b", "ORD-"),
        (r"#ord(\d+)\b", "#ord"),
        (r"TCK-\d+|BUG-\d+", ""),
        (r"x?abc", "abc"),
        (r"(?i:ord)-\d+", "-"),
        (r"(abc)?\d+", ""),
    ],
)
def test_the_literal_every_match_needs_is_found_conservatively(pattern, literal):
    assert required_literal(pattern) == literal


def test_a_case_insensitive_reference_pattern_still_finds_other_cases():
    ticket = item(kind=Item.Kind.TICKET, external_ref="abc-12")
    rule(S.REFERENCE, kind=Item.Kind.TICKET, pattern=r"(?i)\b(abc-\d+)")
    email = captured(subject="About ABC-12")
    assert linked_items(email) == set()  # the reference found is "ABC-12", not "abc-12"
    other = captured(message_id="<x@globex.co.uk>", subject="About abc-12 again")
    assert linked_items(other) == {ticket.pk}
