"""Behaviours users know from Pipedrive and HubSpot, one test each (docs/linking.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from capture.links import Target, link_thread
from capture.models import EmailMessage, LinkRule, ThreadLink
from crm.models import ApiToken, Item
from tests.capture.linking.helpers import TOM, captured, item, linked_items, rule
from tests.factories import make_contact, make_organization, make_user

pytestmark = pytest.mark.django_db
S = LinkRule.Strategy


@pytest.fixture(autouse=True)
def single_open():
    return rule(S.SINGLE_OPEN)


@pytest.mark.parametrize("status", [Item.Status.WON, Item.Status.LOST, Item.Status.CLOSED])
def test_only_open_items_auto_link(status):
    tom = make_contact(emails=(TOM,))
    done = item(tom)
    done.status = status
    done.save()
    assert linked_items(captured()) == set()


@pytest.mark.parametrize("status", [Item.Status.WON, Item.Status.LOST, Item.Status.CLOSED, None])
def test_after_an_item_is_won_lost_closed_or_deleted_new_mail_no_longer_links_to_it(status):
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    first = captured(message_id="<a@globex.co.uk>", subject="First")
    assert linked_items(first) == {deal.pk}
    deal_id = deal.pk
    if status is None:
        deal.delete()
    else:
        deal.status = status
        deal.save()
    later = captured(message_id="<b@globex.co.uk>", subject="Something new")
    assert later.thread_id != first.thread_id
    assert linked_items(later) == set()
    if status is not None:
        # manual linking still works for a closed item
        admin = make_user(role="admin")
        thread = later.thread
        link_thread(thread, Target("item", deal_id), user=admin, actor=admin, channel="admin")
        assert linked_items(later) == {deal_id}


def test_an_item_created_after_the_thread_started_is_not_linked_retroactively():
    tom = make_contact(emails=(TOM,))
    item(tom, created=datetime(2025, 3, 25, tzinfo=UTC))  # the day after the first mail
    first = captured(message_id="<a@globex.co.uk>", date=datetime(2025, 3, 24, 9, tzinfo=UTC))
    reply = captured(
        message_id="<b@globex.co.uk>",
        in_reply_to="<a@globex.co.uk>",
        subject="Re: Delivery schedule for April",
        date=datetime(2025, 3, 26, 9, tzinfo=UTC),
    )
    assert reply.thread_id == first.thread_id
    assert linked_items(reply) == set()
    # a new conversation after the item exists does link
    new = captured(
        message_id="<c@globex.co.uk>", subject="Other", date=datetime(2025, 3, 27, tzinfo=UTC)
    )
    assert len(linked_items(new)) == 1


def test_a_thread_with_more_than_two_external_recipients_links_only_through_those_with_open_items():
    tom = make_contact(emails=(TOM,))
    make_contact(emails=("ann@globex.co.uk",))
    make_contact(emails=("bea@initech.test",))
    deal = item(tom)
    email = captured(
        from_="Sam <sam.seller@mailwarden-demo.com>",
        to=f"{TOM}, ann@globex.co.uk, bea@initech.test",
        message_id="<many@mailwarden-demo.com>",
    )
    [link] = ThreadLink.objects.filter(thread_id=email.thread_id, item__isnull=False)
    assert link.item_id == deal.pk
    assert link.matched_address == TOM and link.detail["contact"] == tom.pk


def test_a_reply_joins_its_thread_and_inherits_the_threads_links():
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    first = captured(message_id="<a@globex.co.uk>")
    # the deal is won meanwhile: the reply is not linked by a rule, yet shows on the deal
    deal.status = Item.Status.WON
    deal.save()
    reply = captured(message_id="<b@globex.co.uk>", in_reply_to="<a@globex.co.uk>", subject="Re: x")
    assert reply.thread_id == first.thread_id
    assert linked_items(reply) == {deal.pk}
    on_deal = EmailMessage.objects.filter(thread__links__item=deal)
    assert set(on_deal.values_list("pk", flat=True)) == {first.pk, reply.pk}


def test_a_thread_links_as_a_whole_one_link_per_record_not_one_per_message():
    tom = make_contact(emails=(TOM,))
    deal = item(tom)
    first = captured(message_id="<a@globex.co.uk>")
    captured(message_id="<b@globex.co.uk>", in_reply_to="<a@globex.co.uk>", subject="Re: x")
    captured(message_id="<c@globex.co.uk>", in_reply_to="<b@globex.co.uk>", subject="Re: x")
    links = ThreadLink.objects.filter(thread_id=first.thread_id)
    assert links.filter(item=deal).count() == 1
    assert links.filter(contact=tom).count() == 1
    assert first.thread.messages.count() == 3


def test_mail_linked_to_a_contact_shows_on_the_contacts_organization_too():
    org = make_organization(name="Globex")  # no domain: found through the contact only
    tom = make_contact(emails=(TOM,), organization=org)
    email = captured()
    assert ThreadLink.objects.filter(thread_id=email.thread_id, contact=tom).exists()
    assert ThreadLink.objects.filter(thread_id=email.thread_id, organization=org).exists()
    admin = make_user(role="admin")
    _, key = ApiToken.issue(user=admin, name="t", scopes=["capture:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    found = client.get(f"/api/v1/emails/?organization={org.pk}").json()
    ids = [e["id"] for e in found.get("results", found)]
    assert ids == [email.pk]
