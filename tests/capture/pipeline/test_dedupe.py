"""One EmailMessage per normalised Message-ID: the same mail logged twice (two channels, two
colleagues, a retry, one batch) becomes one message with one Capture row per act of capture."""

from __future__ import annotations

import pytest

from capture.models import Capture, EmailMessage, RawMessage
from capture.pipeline import process_raw_messages
from tests.capture.pipeline.helpers import capture, fixture_bytes, make_mail, store, table_counts
from tests.factories import make_contact, make_mailbox, make_organization, make_user

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
MID = "CAF1a2b3c4d5e6@mail.acme-widgets.com"


def counts_but_captures() -> dict[str, int]:
    counts = table_counts()
    for name in ("RawMessage", "Capture", "AuditEvent"):
        counts.pop(name)
    return counts


@pytest.fixture
def crm():
    make_organization(name="ACME", domains=("acme-widgets.com",))
    make_contact(emails=("jane.doe@acme-widgets.com",))


def test_the_same_mail_by_two_channels_and_two_users_is_one_message_with_two_captures(crm):
    data = fixture_bytes("multipart_alternative.eml")
    alice, bob = make_user(), make_user()
    _, first = capture(data, RawMessage.Channel.API, user_id=alice.pk, source="outlook add-in")
    after_first = counts_but_captures()
    box = make_mailbox(bob)
    _, second = capture(
        data, RawMessage.Channel.IMAP, user_id=bob.pk, mailbox_id=box.pk, source="INBOX/4711"
    )
    assert (first.status, first.duplicate) == (Status.PROCESSED, False)
    assert (second.status, second.duplicate) == (Status.PROCESSED, True)
    assert second.email_id == first.email_id
    assert EmailMessage.objects.get().message_id == MID
    captures = Capture.objects.filter(email_id=first.email_id).order_by("pk")
    assert [(c.user_id, c.channel, c.source) for c in captures] == [
        (alice.pk, RawMessage.Channel.API, "outlook add-in"),
        (bob.pk, RawMessage.Channel.IMAP, "INBOX/4711"),
    ]
    assert counts_but_captures() == after_first


def test_a_duplicate_capture_points_its_raw_message_at_the_existing_email():
    data = fixture_bytes("calendar_invite.eml")
    raw1, one = capture(data, user_id=make_user().pk)
    raw2, two = capture(data, RawMessage.Channel.SMTP, user_id=make_user().pk)
    assert raw1.email_id == raw2.email_id == one.email_id == two.email_id
    assert raw2.capture.email_id == one.email_id


def test_a_retry_of_the_same_bytes_by_the_same_user_adds_a_capture_and_nothing_else(crm):
    user = make_user()
    data = fixture_bytes("rfc2047_rfc2231.eml")
    capture(data, user_id=user.pk, idempotency_key="try-1")
    before = counts_but_captures()
    _, again = capture(data, user_id=user.pk, idempotency_key="try-2")
    assert again.duplicate is True
    assert counts_but_captures() == before
    assert Capture.objects.filter(user=user).count() == 2


def test_duplicates_within_one_batch_become_one_message_with_two_captures(crm):
    data = fixture_bytes("multipart_alternative.eml")
    alice, bob = make_user(), make_user()
    a = store(data, RawMessage.Channel.API, user_id=alice.pk)
    b = store(data, RawMessage.Channel.SMTP, user_id=bob.pk)
    c = store(fixture_bytes("base64_and_qp.eml"), RawMessage.Channel.API, user_id=alice.pk)
    outcomes = {o.raw_id: o for o in process_raw_messages([a.pk, b.pk, c.pk])}
    assert {o.status for o in outcomes.values()} == {Status.PROCESSED}
    assert outcomes[a.pk].email_id == outcomes[b.pk].email_id != outcomes[c.pk].email_id
    assert [outcomes[a.pk].duplicate, outcomes[b.pk].duplicate] == [False, True]
    assert EmailMessage.objects.count() == 2
    email = EmailMessage.objects.get(message_id=MID)
    assert set(email.captures.values_list("user_id", flat=True)) == {alice.pk, bob.pk}
    # the duplicate added no participants or links of its own: Jane, Sam, procurement@;
    # Jane and ACME linked on the thread (Bernd has no contact: inbound mail creates none)
    assert email.participants.count() == 3
    assert list(email.thread.links.values_list("source", flat=True)) == ["participant"] * 2
    before = counts_but_captures()
    _, solo = capture(data, user_id=make_user().pk)
    assert solo.duplicate is True
    assert counts_but_captures() == before


def test_a_message_id_with_other_whitespace_around_its_brackets_is_the_same_message():
    capture(make_mail(message_id="<Order-1@Globex.co.uk>"), user_id=make_user().pk)
    _, again = capture(make_mail(message_id="  <Order-1@Globex.co.uk> "), user_id=make_user().pk)
    assert again.duplicate is True
    assert EmailMessage.objects.count() == 1


def test_a_synthesised_message_id_is_stable_for_the_same_bytes():
    data = fixture_bytes("missing_message_id.eml")
    _, first = capture(data, user_id=make_user().pk)
    _, second = capture(data, RawMessage.Channel.IMAP, user_id=make_user().pk)
    email = EmailMessage.objects.get()
    assert email.message_id_synthesised is True
    assert second.duplicate is True
    assert first.email_id == second.email_id == email.pk
    assert Capture.objects.filter(email=email).count() == 2


def test_a_synthesised_message_id_ignores_transport_headers_added_on_the_way():
    data = fixture_bytes("missing_message_id.eml")
    relayed = (
        b"Received: from mx.mailwarden-demo.com by imap.mailwarden-demo.com; "
        b"Mon, 10 Mar 2025 17:00:03 +0000\r\n"
        b"Delivered-To: sam.seller@mailwarden-demo.com\r\n" + data
    )
    capture(data, RawMessage.Channel.SMTP, user_id=make_user().pk)
    _, synced = capture(relayed, RawMessage.Channel.IMAP, user_id=make_user().pk)
    assert synced.duplicate is True
    assert EmailMessage.objects.count() == 1


def test_different_mail_without_message_ids_stays_different():
    capture(make_mail(message_id=None, body="first text"))
    _, other = capture(make_mail(message_id=None, body="second text"))
    assert other.duplicate is False
    assert EmailMessage.objects.count() == 2
