"""Threading: In-Reply-To and References first, late parents merge the threads their replies
started, then normalised subject + participant overlap inside the window; thread times,
counts and owner; a reply shares the thread's links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from capture.models import EmailMessage, RawMessage, Thread, ThreadLink
from capture.pipeline import process_raw_messages
from tests.capture.pipeline.helpers import capture, fixture_bytes, make_mail, store
from tests.factories import make_contact, make_organization, make_user, set_org_settings

pytestmark = pytest.mark.django_db

SAM = "Sam Seller <sam.seller@mailwarden-demo.com>"
TOM = "Tom Buyer <tom.buyer@globex.co.uk>"
T0 = datetime(2025, 3, 24, 8, 0, tzinfo=UTC)

# reply_in_thread_1.eml answers this one; reply_in_thread_2.eml answers reply 1.
ROOT = make_mail(
    message_id="<thread-msg-1@mailwarden-demo.com>",
    subject="Delivery schedule",
    from_=SAM,
    to=TOM,
    date=T0,
    body="Could we deliver on Monday?",
)
# The same root under a subject its replies do not share: only References can join them, so
# a reply that came first must be merged (subject threading cannot paper over it).
LATE_ROOT = make_mail(
    message_id="<thread-msg-1@mailwarden-demo.com>",
    subject="Deliveries in April",
    from_=SAM,
    to=TOM,
    date=T0,
    body="Could we deliver on Monday?",
)


@pytest.fixture(autouse=True)
def sam_is_a_user():
    """Sam works here: his address is internal, so only customers count as overlap."""
    return make_user(email="sam.seller@mailwarden-demo.com")


def email_of(data: bytes, user=None, **fields) -> EmailMessage:
    raw, outcome = capture(data, user_id=user.pk if user else None, **fields)
    assert outcome.status == RawMessage.Status.PROCESSED, (raw.reason_code, raw.traceback)
    return EmailMessage.objects.select_related("thread").get(pk=outcome.email_id)


def thread_of(message_id: str) -> Thread:
    return EmailMessage.objects.select_related("thread").get(message_id=message_id).thread


# --- references -------------------------------------------------------------------------------


def test_a_reply_joins_its_parents_thread_by_in_reply_to():
    root = email_of(ROOT)
    reply = email_of(
        make_mail(
            message_id="<r1@globex.co.uk>",
            subject="totally different words",
            in_reply_to="<thread-msg-1@mailwarden-demo.com>",
            date=T0 + timedelta(hours=1),
        )
    )
    assert reply.thread_id == root.thread_id
    assert Thread.objects.count() == 1


def test_the_fixture_replies_join_the_root_thread():
    root = email_of(ROOT)
    one = email_of(fixture_bytes("reply_in_thread_1.eml"))
    two = email_of(fixture_bytes("reply_in_thread_2.eml"))
    assert root.thread_id == one.thread_id == two.thread_id
    thread = Thread.objects.get()
    assert thread.message_count == 3


def test_a_reply_without_in_reply_to_joins_by_references():
    root = email_of(ROOT)
    reply = email_of(
        make_mail(
            message_id="<r2@globex.co.uk>",
            subject="something else entirely",
            references="<unknown@elsewhere.test> <thread-msg-1@mailwarden-demo.com>",
            date=T0 + timedelta(hours=1),
        )
    )
    assert reply.thread_id == root.thread_id


def test_unrelated_mail_starts_its_own_thread():
    root = email_of(ROOT)
    other = email_of(fixture_bytes("multipart_alternative.eml"))
    assert other.thread_id != root.thread_id


# --- late parents -----------------------------------------------------------------------------


def test_a_reply_that_arrives_before_its_parent_is_merged_into_one_thread_when_the_parent_comes():
    reply = email_of(fixture_bytes("reply_in_thread_1.eml"))
    orphan_thread = reply.thread_id
    root = email_of(LATE_ROOT)
    reply.refresh_from_db()
    assert reply.thread_id == root.thread_id
    assert Thread.objects.count() == 1
    assert not Thread.objects.filter(pk=orphan_thread).exists() or orphan_thread == root.thread_id
    assert Thread.objects.get().message_count == 2


def test_a_grandchild_and_child_that_arrive_before_the_root_end_in_one_thread():
    email_of(fixture_bytes("reply_in_thread_2.eml"))
    email_of(fixture_bytes("reply_in_thread_1.eml"))
    email_of(LATE_ROOT)
    assert Thread.objects.count() == 1
    thread = Thread.objects.get()
    assert thread.message_count == 3
    assert thread.first_at == T0
    assert thread.last_at == datetime(2025, 3, 24, 10, 30, tzinfo=UTC)


def test_parent_and_reply_stored_in_reverse_order_in_one_batch_end_in_one_thread():
    raws = [
        store(fixture_bytes("reply_in_thread_2.eml")),
        store(fixture_bytes("reply_in_thread_1.eml")),
        store(LATE_ROOT),
    ]
    outcomes = process_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {RawMessage.Status.PROCESSED}
    assert Thread.objects.count() == 1
    assert Thread.objects.get().message_count == 3


def test_a_late_parent_in_the_same_batch_takes_over_the_replys_thread_links_and_owner():
    # The reply's thread is created and merged away inside the batch (on PostgreSQL it is
    # never inserted): the merged thread keeps one link per contact and the first capturer.
    tom = make_contact(emails=("tom.buyer@globex.co.uk",))
    first, second = make_user(), make_user()
    # dated before its parent, so the batch (in date order) meets it first
    early_reply = make_mail(
        message_id="<early@globex.co.uk>",
        subject="Re: Deliveries",
        from_=TOM,
        to=SAM,
        in_reply_to="<thread-msg-1@mailwarden-demo.com>",
        date=T0 - timedelta(hours=2),
    )
    raws = [store(early_reply, user_id=first.pk), store(LATE_ROOT, user_id=second.pk)]
    outcomes = process_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {RawMessage.Status.PROCESSED}
    thread = Thread.objects.get()
    assert thread.message_count == 2
    assert thread.owner_id == first.pk
    assert set(EmailMessage.objects.values_list("thread_id", flat=True)) == {thread.pk}
    assert list(ThreadLink.objects.values_list("thread_id", "contact_id")) == [(thread.pk, tom.pk)]


def test_a_reply_dated_before_its_parent_in_the_same_batch_still_ends_in_one_thread():
    # a sender's clock is off: the reply claims to be older than the mail it answers
    early_reply = make_mail(
        message_id="<skewed@globex.co.uk>",
        subject="Skewed clock",
        in_reply_to="<thread-msg-1@mailwarden-demo.com>",
        date=T0 - timedelta(hours=2),
    )
    raws = [store(early_reply), store(LATE_ROOT)]
    process_raw_messages([r.pk for r in raws])
    assert Thread.objects.count() == 1
    assert thread_of("skewed@globex.co.uk") == thread_of("thread-msg-1@mailwarden-demo.com")
    assert Thread.objects.get().message_count == 2


def test_a_late_parent_brings_the_replys_links_into_the_merged_thread():
    tom = make_contact(emails=("tom.buyer@globex.co.uk",))
    reply = email_of(fixture_bytes("reply_in_thread_1.eml"))
    assert ThreadLink.objects.filter(thread_id=reply.thread_id, contact=tom).exists()
    root = email_of(LATE_ROOT)
    assert ThreadLink.objects.filter(thread_id=root.thread_id, contact=tom).count() == 1
    assert ThreadLink.objects.count() == 1


# --- subjects ---------------------------------------------------------------------------------


def test_a_reply_without_references_joins_by_subject_with_prefixes_and_list_tags_stripped():
    root = email_of(ROOT)
    reply = email_of(
        make_mail(
            message_id="<no-refs@globex.co.uk>",
            subject="Re: AW: Fwd: [logistics] Delivery  schedule",
            date=T0 + timedelta(days=2),
        )
    )
    assert reply.thread_id == root.thread_id


def test_the_same_subject_with_a_different_customer_starts_a_new_thread():
    root = email_of(ROOT)
    other = email_of(
        make_mail(
            message_id="<acme-1@acme-widgets.com>",
            subject="Re: Delivery schedule",
            from_="Jane Doe <jane.doe@acme-widgets.com>",
            to=SAM,
            date=T0 + timedelta(days=1),
        )
    )
    assert other.thread_id != root.thread_id


def test_the_same_subject_and_customer_outside_the_window_starts_a_new_thread():
    set_org_settings(thread_window_days=30)
    root = email_of(ROOT)
    inside = email_of(
        make_mail(
            message_id="<in@globex.co.uk>",
            subject="Re: Delivery schedule",
            date=T0 + timedelta(days=29),
        )
    )
    later = email_of(
        make_mail(
            message_id="<out@globex.co.uk>",
            subject="Re: Delivery schedule",
            date=T0 + timedelta(days=70),
        )
    )
    assert inside.thread_id == root.thread_id
    assert later.thread_id != root.thread_id


def test_subject_threading_in_one_batch_uses_the_batchs_own_participants():
    raws = [
        store(ROOT),
        store(
            make_mail(
                message_id="<b2@globex.co.uk>",
                subject="RE: Delivery schedule",
                date=T0 + timedelta(hours=3),
            )
        ),
        store(
            make_mail(
                message_id="<b3@acme-widgets.com>",
                subject="RE: Delivery schedule",
                from_="Jane Doe <jane.doe@acme-widgets.com>",
                date=T0 + timedelta(hours=4),
            )
        ),
    ]
    process_raw_messages([r.pk for r in raws])
    assert thread_of("b2@globex.co.uk") == thread_of("thread-msg-1@mailwarden-demo.com")
    assert thread_of("b3@acme-widgets.com") != thread_of("thread-msg-1@mailwarden-demo.com")


def test_a_generic_subject_never_threads_by_subject_alone():
    email_of(make_mail(message_id="<g1@globex.co.uk>", subject="Question"))
    second = email_of(
        make_mail(
            message_id="<g2@globex.co.uk>", subject="Re: question", date=T0 + timedelta(hours=1)
        )
    )
    assert Thread.objects.count() == 2
    assert second.thread.message_count == 1


# --- thread times, count, owner ---------------------------------------------------------------


def test_a_thread_records_its_first_and_last_time_and_its_message_count():
    email_of(fixture_bytes("reply_in_thread_1.eml"))
    email_of(LATE_ROOT)
    email_of(fixture_bytes("reply_in_thread_2.eml"))
    thread = Thread.objects.get()
    assert thread.first_at == T0
    assert thread.last_at == datetime(2025, 3, 24, 10, 30, tzinfo=UTC)
    assert thread.message_count == 3
    assert thread.subject_norm == "deliveries in april"  # the root names the thread


def test_a_duplicate_capture_does_not_count_as_another_message():
    email_of(ROOT, make_user())
    email_of(ROOT, make_user())
    assert Thread.objects.get().message_count == 1


def test_the_thread_owner_is_the_first_capturer():
    first, second = make_user(), make_user()
    email_of(ROOT, first)
    email_of(fixture_bytes("reply_in_thread_1.eml"), second)
    assert Thread.objects.get().owner_id == first.pk


def test_the_thread_owner_is_the_first_capturer_when_the_first_capture_had_no_user():
    later = make_user()
    email_of(ROOT)  # e.g. an import with no user
    email_of(fixture_bytes("reply_in_thread_1.eml"), later)
    assert Thread.objects.get().owner_id == later.pk


def test_the_thread_owner_stays_the_first_capturer_when_a_late_parent_merges_threads():
    first, second = make_user(), make_user()
    email_of(fixture_bytes("reply_in_thread_1.eml"), first)
    email_of(LATE_ROOT, second)
    assert Thread.objects.get().owner_id == first.pk


# --- links are the thread's -------------------------------------------------------------------


def test_a_reply_inherits_the_links_of_its_thread():
    globex = make_organization(name="Globex", domains=("globex.co.uk",))
    tom = make_contact(emails=("tom.buyer@globex.co.uk",), organization=globex)
    root = email_of(ROOT)
    manual = ThreadLink.objects.create(
        thread=root.thread, contact=make_contact(), source=ThreadLink.Source.MANUAL
    )
    reply = email_of(
        make_mail(
            message_id="<from-anna@globex.co.uk>",
            from_="Anna Lee <anna.lee@other-company.example>",
            in_reply_to="<thread-msg-1@mailwarden-demo.com>",
            date=T0 + timedelta(hours=1),
        )
    )
    linked = set(
        ThreadLink.objects.filter(thread=reply.thread).values_list("contact_id", "organization_id")
    )
    assert (tom.pk, None) in linked
    assert (None, globex.pk) in linked
    assert (manual.contact_id, None) in linked


def test_subject_threading_looks_up_stored_threads_once_per_batch():
    """Three new messages that may thread by subject: one candidate query for the batch, not
    one per message (bench/ingest.py), and each still joins its own customer's thread."""
    roots = {}
    for n, subject in enumerate(("Pricing for May", "Spare parts list", "Service contract")):
        roots[subject] = email_of(
            make_mail(
                message_id=f"<root-{n}@mailwarden-demo.com>",
                subject=subject,
                from_=SAM,
                to=TOM,
                date=T0 + timedelta(hours=n),
            )
        )
    raws = [
        store(
            make_mail(
                message_id=f"<reply-{n}@globex.co.uk>",
                subject=f"Re: {subject}",
                date=T0 + timedelta(days=1, hours=n),
            )
        )
        for n, subject in enumerate(roots)
    ]
    with CaptureQueriesContext(connection) as queries:
        process_raw_messages([r.pk for r in raws])
    thread_queries = [
        q["sql"]
        for q in queries
        if re.search(r'FROM "?capture_thread"? ', q["sql"]) and "subject_norm" in q["sql"]
    ]
    assert len(thread_queries) == 1
    for n, subject in enumerate(roots):
        assert thread_of(f"reply-{n}@globex.co.uk") == roots[subject].thread


def test_more_stored_threads_on_one_subject_than_the_batch_lookup_keeps_still_finds_the_right_one():
    """The batch's lookup keeps the newest 20 threads per subject; an older message whose own
    thread is not among them still finds it (a lookup for its own window)."""
    set_org_settings(thread_window_days=10)
    old_root = email_of(
        make_mail(
            message_id="<old-root@mailwarden-demo.com>", subject="Weekly order", from_=SAM, to=TOM
        )
    )
    recent = T0 + timedelta(days=15)
    for n in range(21):
        email_of(
            make_mail(
                message_id=f"<recent-{n}@mailwarden-demo.com>",
                subject="Weekly order",
                from_=SAM,
                to=f"Buyer {n} <buyer{n}@customer{n}.example>",
                date=recent + timedelta(minutes=n),
            )
        )
    assert Thread.objects.filter(subject_norm="weekly order").count() == 22
    raws = [
        store(
            make_mail(
                message_id="<old-reply@globex.co.uk>",
                subject="Re: Weekly order",
                date=T0 + timedelta(days=2),
            )
        ),
        store(
            make_mail(
                message_id="<recent-other@elsewhere.example>",
                subject="Re: Weekly order",
                from_="Nobody <nobody@elsewhere.example>",
                date=recent + timedelta(hours=1),
            )
        ),
    ]
    process_raw_messages([r.pk for r in raws])
    assert thread_of("old-reply@globex.co.uk") == old_root.thread


def test_references_longer_than_the_column_that_agree_on_their_stored_part_are_stored_once():
    # Message-IDs are stored up to 995 characters: two that differ only beyond that are one
    # stored reference (a plain insert, so a repeat would be a unique-constraint error).
    stem = "a" * 900 + "@" + "b" * 94  # 995 characters: the column's length
    data = make_mail(
        message_id="<long-refs@globex.co.uk>",
        references=f"<{stem}1> <{stem}2>",
        in_reply_to=f"<{stem}3>",
    )
    email = email_of(data)
    refs = list(email.refs.values_list("ref", flat=True))
    assert refs == [stem]


def test_only_references_to_messages_not_stored_keep_a_row_for_a_late_parent():
    # A reference row is how a late parent finds its replies; a stored parent (or one new in
    # the same batch) never arrives again, so pointing at it would only cost rows.
    email_of(ROOT)
    reply = email_of(
        make_mail(
            message_id="<r1@globex.co.uk>",
            in_reply_to="<gone@globex.co.uk>",
            references="<thread-msg-1@mailwarden-demo.com> <gone@globex.co.uk>",
            date=T0 + timedelta(hours=1),
        )
    )
    assert list(reply.refs.values_list("ref", flat=True)) == ["gone@globex.co.uk"]
    same_batch = [
        store(make_mail(message_id="<b1@globex.co.uk>", subject="Batch root", date=T0)),
        store(
            make_mail(
                message_id="<b2@globex.co.uk>",
                subject="Re: Batch root",
                in_reply_to="<b1@globex.co.uk>",
                date=T0 + timedelta(hours=1),
            )
        ),
    ]
    process_raw_messages([r.pk for r in same_batch])
    assert not EmailMessage.objects.get(message_id="b2@globex.co.uk").refs.exists()
    assert thread_of("b2@globex.co.uk") == thread_of("b1@globex.co.uk")
    # The missing parent arrives: the row it needed was kept, so it takes the reply's thread.
    late = email_of(
        make_mail(
            message_id="<gone@globex.co.uk>",
            subject="Something else entirely",
            from_=SAM,
            to=TOM,
            date=T0 + timedelta(minutes=30),
        )
    )
    assert (
        thread_of("r1@globex.co.uk") == late.thread == thread_of("thread-msg-1@mailwarden-demo.com")
    )
