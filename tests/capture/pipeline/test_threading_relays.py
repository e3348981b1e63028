"""Threading through relays: an ESP (Amazon SES, Mailgun) rewrites the Message-ID it sends, so
the recipients' replies name an id no stored message has; they still join the sender's copy
through the subject fallback. Replies of different recipients of one bulk mail share only its
sender and stay apart (docs/architecture.md, "Threading")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capture.models import EmailMessage, MessageRef, RawMessage, Thread
from capture.pipeline import process_raw_messages
from tests.capture.pipeline.helpers import capture, make_mail, store
from tests.factories import make_user

pytestmark = pytest.mark.django_db

SAM = "Sam Seller <sam.seller@mailwarden-demo.com>"
KIM = "Kim Keller <kim.keller@mailwarden-demo.com>"
TOM = "Tom Buyer <tom.buyer@globex.co.uk>"
JANE = "Jane Doe <jane.doe@acme-widgets.com>"
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)

# What the sender's own copy keeps, and what SES / Mailgun put on the copy they deliver.
SENT_ID = "<CAF3x9-qLrT0mP@mail.mailwarden-demo.com>"
SES_ID = "<0100018f4b2e7c1a-9d3f5e2b-6a7c-4f1e-8b9d-2c4e6f8a0b1c-000000@email.amazonses.com>"
SES_EU_ID = "<0102018f4b2e7c1a-1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9-000000@eu-west-1.amazonses.com>"
MAILGUN_ID = "<20240101093000.1.5F3A2B1C0D9E8F7A@mg.example.com>"


@pytest.fixture(autouse=True)
def users():
    """Sam and Kim work here: their addresses are internal."""
    return (
        make_user(email="sam.seller@mailwarden-demo.com"),
        make_user(email="kim.keller@mailwarden-demo.com"),
    )


def email_of(data: bytes) -> EmailMessage:
    raw, outcome = capture(data)
    assert outcome.status == RawMessage.Status.PROCESSED, (raw.reason_code, raw.traceback)
    return EmailMessage.objects.get(pk=outcome.email_id)


def sent_copy(subject: str = "Quote 4711: spare parts for line 3") -> EmailMessage:
    return email_of(make_mail(message_id=SENT_ID, subject=subject, from_=SAM, to=TOM, date=T0))


@pytest.mark.parametrize("relayed_id", [SES_ID, SES_EU_ID, MAILGUN_ID])
def test_a_reply_naming_the_id_an_esp_rewrote_joins_the_senders_copy_by_subject(relayed_id):
    sent = sent_copy()
    reply = email_of(
        make_mail(
            message_id="<BY5PR04MB6961.namprd04.prod.outlook.com>",
            subject="RE: Quote 4711: spare parts for line 3",
            from_=TOM,
            to=SAM,
            date=T0 + timedelta(hours=3),
            in_reply_to=relayed_id,
            references=relayed_id,
        )
    )
    assert reply.thread_id == sent.thread_id
    assert Thread.objects.count() == 1
    # The rewritten id stays a pointer, should a copy with that id ever be captured.
    assert list(MessageRef.objects.values_list("ref", flat=True)) == [relayed_id.strip("<>")]


def test_a_second_reply_naming_the_first_reply_stays_in_the_same_thread():
    sent = sent_copy()
    first = email_of(
        make_mail(
            message_id="<first-reply@globex.co.uk>",
            subject="Re: Quote 4711: spare parts for line 3",
            from_=TOM,
            to=SAM,
            date=T0 + timedelta(hours=3),
            in_reply_to=SES_ID,
            references=SES_ID,
        )
    )
    second = email_of(
        make_mail(
            message_id="<second@mail.mailwarden-demo.com>",
            subject="Re: Quote 4711: spare parts for line 3",
            from_=SAM,
            to=TOM,
            date=T0 + timedelta(hours=5),
            in_reply_to="<first-reply@globex.co.uk>",
            references=f"{SES_ID} <first-reply@globex.co.uk>",
        )
    )
    assert first.thread_id == sent.thread_id == second.thread_id


def test_replies_of_our_users_to_one_bulk_mail_from_outside_stay_in_their_own_threads():
    """A supplier's bulk mail reached Sam and Kim (each copy with its own SES id); their
    answers share only the supplier's address: no overlap of two participants, two threads."""
    vendor = "Globex Events <events@globex.co.uk>"
    sam_reply = email_of(
        make_mail(
            message_id="<sam-answer@mail.mailwarden-demo.com>",
            subject="Re: Partner webinar on Thursday",
            from_=SAM,
            to=vendor,
            date=T0 + timedelta(hours=1),
            in_reply_to=SES_ID,
            references=SES_ID,
        )
    )
    kim_reply = email_of(
        make_mail(
            message_id="<kim-answer@mail.mailwarden-demo.com>",
            subject="Re: Partner webinar on Thursday",
            from_=KIM,
            to=vendor,
            date=T0 + timedelta(hours=2),
            in_reply_to=SES_EU_ID,
            references=SES_EU_ID,
        )
    )
    assert sam_reply.thread_id != kim_reply.thread_id


def test_replies_of_different_customers_to_one_bulk_mail_from_a_relay_address_stay_apart():
    """Our newsletter went out through Mailgun from an address no user has: two customers'
    replies share only that address and must not merge, in one batch or in two."""
    relay = "Mailwarden Demo News <news@mg.example.com>"
    raws = [
        store(
            make_mail(
                message_id=f"<reply-{n}@{domain}>",
                subject="Re: Spring offers for 2024",
                from_=sender,
                to=relay,
                date=T0 + timedelta(hours=n + 1),
                in_reply_to=MAILGUN_ID,
                references=MAILGUN_ID,
            )
        )
        for n, (sender, domain) in enumerate(((TOM, "globex.co.uk"), (JANE, "acme-widgets.com")))
    ]
    process_raw_messages([r.pk for r in raws])
    later = email_of(
        make_mail(
            message_id="<reply-3@initech.example>",
            subject="Re: Spring offers for 2024",
            from_="Peter Gibbons <peter@initech.example>",
            to=relay,
            date=T0 + timedelta(hours=5),
            in_reply_to=MAILGUN_ID,
            references=MAILGUN_ID,
        )
    )
    threads = set(EmailMessage.objects.values_list("thread_id", flat=True))
    assert len(threads) == 3
    assert later.thread.message_count == 1


def test_a_reply_from_the_second_customer_of_a_group_mail_still_joins_by_subject():
    """Two shared participants, one of them an external counterpart: a real conversation."""
    sent = email_of(
        make_mail(
            message_id=SENT_ID,
            subject="Joint delivery plan",
            from_=SAM,
            to=f"{TOM}, {JANE}",
            date=T0,
        )
    )
    reply = email_of(
        make_mail(
            message_id="<jane-1@acme-widgets.com>",
            subject="Re: Joint delivery plan",
            from_=JANE,
            to=SAM,
            date=T0 + timedelta(hours=2),
            in_reply_to=SES_ID,
        )
    )
    assert reply.thread_id == sent.thread_id


def test_a_customer_writing_to_a_colleague_under_the_same_subject_starts_a_new_thread():
    """Only the customer is shared (Sam got the first mail, Kim the second): one address."""
    sent = sent_copy("Maintenance window in June")
    other = email_of(
        make_mail(
            message_id="<tom-to-kim@globex.co.uk>",
            subject="Re: Maintenance window in June",
            from_=TOM,
            to=KIM,
            date=T0 + timedelta(days=1),
        )
    )
    assert other.thread_id != sent.thread_id
