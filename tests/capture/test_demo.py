"""seed_demo: demo CRM and demo mail through the real pipeline, idempotent."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

import pytest
from django.core.management import call_command
from django.db.models import Count

from capture.demo import generate_messages
from capture.models import Attachment, CaptureAddress, EmailMessage, Meeting, RawMessage, Thread
from governance.models import OrgSettings

pytestmark = pytest.mark.django_db(transaction=True)

INTERNAL = [
    ("Alice Martin", "alice@mailwarden-demo.com"),
    ("Bob Keller", "bob@mailwarden-demo.com"),
]
CUSTOMERS = [(f"Customer {i}", f"c{i}@org{i % 3}.example") for i in range(9)]


def seed(messages: int = 40) -> None:
    call_command(
        "seed_demo", organizations=20, messages=messages, seed=7, stdout=open("/dev/null", "w")
    )


def test_generated_mail_is_the_same_for_the_same_seed_and_differs_for_another():
    kwargs = {
        "n": 30,
        "internal": INTERNAL,
        "customers": CUSTOMERS,
        "start": datetime(2025, 1, 6, tzinfo=UTC),
    }
    assert generate_messages(seed=1, **kwargs) == generate_messages(seed=1, **kwargs)
    assert generate_messages(seed=1, **kwargs) != generate_messages(seed=2, **kwargs)


def test_generated_replies_carry_threading_headers_and_crlf_line_ends():
    raws = generate_messages(
        n=40, seed=3, internal=INTERNAL, customers=CUSTOMERS, start=datetime(2025, 1, 6, tzinfo=UTC)
    )
    msgs = [email.message_from_bytes(r, policy=policy.default) for r in raws]
    by_id = {m["Message-ID"]: m for m in msgs}
    replies = [m for m in msgs if m["In-Reply-To"]]
    assert replies
    for reply in replies:
        parent = by_id[reply["In-Reply-To"]]
        assert reply["Subject"] == "Re: " + parent["Subject"].removeprefix("Re: ")
        assert reply["References"].split()[-1] == reply["In-Reply-To"]
    assert all(b"\n" not in r.replace(b"\r\n", b"") for r in raws)
    assert sum(m.get_content_type() == "multipart/mixed" for m in msgs) >= 5
    assert any("METHOD:REQUEST" in r.decode("ascii", "replace") for r in raws)


def test_seed_demo_captures_mail_through_the_pipeline():
    seed()
    raws = RawMessage.objects.filter(channel=RawMessage.Channel.DEMO)
    assert raws.count() == 40
    assert set(raws.values_list("status", flat=True)) == {RawMessage.Status.PROCESSED}
    assert EmailMessage.objects.count() == 40
    assert Thread.objects.annotate(n=Count("messages")).filter(n__gte=3).exists()
    assert Meeting.objects.filter(method="REQUEST").count() == 1
    assert Attachment.objects.filter(blob__isnull=False).exists()
    assert EmailMessage.objects.filter(direction=EmailMessage.Direction.INBOUND).exists()
    assert EmailMessage.objects.filter(direction=EmailMessage.Direction.OUTBOUND).exists()
    assert OrgSettings.load().internal_domains == ["mailwarden-demo.com"]
    assert CaptureAddress.objects.filter(user__username="alice").exists()


def test_seed_demo_sets_up_categories_and_link_rules_once_and_mail_links_to_items():
    from capture.models import Category, LinkRule, ThreadLink

    seed()
    seed()
    assert Category.objects.count() == 5
    assert sorted(LinkRule.objects.values_list("kind", flat=True)) == ["deal", "lead", "ticket"]
    assert ThreadLink.objects.filter(item__isnull=False).exists()


def test_seed_demo_twice_adds_no_messages():
    seed()
    before = (RawMessage.objects.count(), EmailMessage.objects.count(), Thread.objects.count())
    seed()
    assert (
        RawMessage.objects.count(),
        EmailMessage.objects.count(),
        Thread.objects.count(),
    ) == before


def test_seed_demo_with_more_messages_adds_only_the_new_ones():
    seed(messages=20)
    seed(messages=40)
    assert RawMessage.objects.filter(channel=RawMessage.Channel.DEMO).count() == 40
    assert EmailMessage.objects.count() == 40
    assert Meeting.objects.count() == 1


def test_a_longer_run_of_a_seed_starts_with_the_shorter_one():
    kwargs = {
        "seed": 5,
        "internal": INTERNAL,
        "customers": CUSTOMERS,
        "start": datetime(2025, 1, 6, tzinfo=UTC),
    }
    assert generate_messages(n=60, **kwargs)[:25] == generate_messages(n=25, **kwargs)
