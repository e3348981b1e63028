"""A user forwards a customer's mail to their capture address: the ORIGINAL is logged (its
sender, subject, date, body), captured by the forwarding user; the wrapper is not a message.
A forward whose original cannot be recovered is logged as the wrapper, flagged. A plain BCC
(the capture address only in the envelope) logs the message itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from capture.models import Attachment, Capture, EmailMessage, RawMessage
from tests.capture.pipeline.helpers import capture, fixture_bytes, make_mail
from tests.factories import make_capture_address, make_user, make_user_address

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
SAM = "sam.seller@mailwarden-demo.com"
PLACEHOLDER = b"capture+sam@mailwarden-demo.com"  # the fixtures' stand-in for a capture address

FORWARDS = {
    "forward_gmail_inline.eml": (
        "sam.seller@gmail.com",
        "tom.buyer@globex.co.uk",
        "Samples for Globex",
        datetime(2025, 3, 17, 10, 15, tzinfo=UTC),
        "can you send two samples to our Leeds site?",
    ),
    "forward_outlook_inline.eml": (
        SAM,
        "j.mueller@initech.de",
        "Rahmenvertrag 2025",
        datetime(2025, 3, 20, 16, 2, tzinfo=UTC),
        "anbei unsere Anmerkungen zum Rahmenvertrag.",
    ),
    "forward_apple_inline.eml": (
        "sam.seller@icloud.com",
        "elodie.bernard@globex.co.uk",
        "Meeting notes",
        datetime(2025, 3, 21, 17, 30, 12, tzinfo=UTC),
        "here are the notes from today's meeting.",
    ),
    "forward_thunderbird_inline.eml": (
        SAM,
        "bernd.becker@initech.de",
        "Invoice question",
        datetime(2025, 3, 21, 10, 5, tzinfo=UTC),
        "invoice 2025-311 shows the wrong VAT rate.",
    ),
    "forwarded_rfc822.eml": (
        SAM,
        "jane.doe@acme-widgets.com",
        "Widget order 7781",
        datetime(2025, 2, 28, 16, 30, tzinfo=UTC),
        "Tom, order 7781 ships Monday.",
    ),
    "forwarded_rfc822_base64.eml": (  # an .eml attached in base64 (RFC 2046 says 7/8bit)
        SAM,
        "jane.doe@acme-widgets.com",
        "Widget order 7781",
        datetime(2025, 2, 28, 16, 30, tzinfo=UTC),
        "Tom, order 7781 ships Monday.",
    ),
}


@pytest.fixture
def sam():
    """Sam logs in as sam.seller@mailwarden-demo.com and also sends from Gmail and iCloud."""
    user = make_user(email=SAM)
    make_user_address(user, "sam.seller@gmail.com")
    make_user_address(user, "sam.seller@icloud.com")
    return user


def forward(user, data: bytes, envelope_from: str, **fields):
    """Send `data` to the user's capture address the way the SMTP listener stores it."""
    address = make_capture_address(user)
    data = data.replace(PLACEHOLDER, address.address.encode())
    return capture(
        data,
        RawMessage.Channel.SMTP,
        user_id=user.pk,
        capture_address_id=address.pk,
        envelope_from=envelope_from,
        envelope_to=[address.address],
        source="smtp:test",
        **fields,
    )


@pytest.mark.parametrize("name", sorted(FORWARDS))
def test_a_forward_to_the_capture_address_logs_the_original_captured_by_the_forwarder(sam, name):
    envelope_from, sender, subject, date, words = FORWARDS[name]
    raw, outcome = forward(sam, fixture_bytes(name), envelope_from)
    assert (outcome.status, outcome.reason_code) == (Status.PROCESSED, ""), raw.traceback
    email = EmailMessage.objects.get()
    assert email.pk == outcome.email_id
    assert email.from_address == sender
    assert email.subject == subject
    assert email.date == date
    assert words in email.text_body
    assert email.forwarded_flag == ""
    assert email.direction == EmailMessage.Direction.INBOUND
    capture_row = Capture.objects.get(email=email)
    assert (capture_row.user_id, capture_row.channel) == (sam.pk, RawMessage.Channel.SMTP)
    # the wrapper is not a message: not its subject, not its note, not the capture address
    assert not email.subject.lower().startswith(("fwd", "wg"))
    assert "log+" not in " ".join(email.participants.values_list("address", flat=True))
    assert sender in set(email.participants.values_list("address", flat=True))


def test_an_attached_original_keeps_its_own_message_id_and_attachment(sam):
    forward(sam, fixture_bytes("forwarded_rfc822.eml"), SAM)
    email = EmailMessage.objects.get()
    assert email.message_id == "original-7781@mail.acme-widgets.com"
    assert email.message_id_synthesised is False
    assert not EmailMessage.objects.filter(message_id="fwd-wrapper-1@mailwarden-demo.com").exists()
    assert "FYI, for the Globex deal" not in email.text_body
    assert list(Attachment.objects.filter(email=email).values_list("filename", flat=True)) == [
        "order-7781.pdf"
    ]


def test_an_inline_original_gets_a_synthesised_id_and_the_forwarded_files(sam):
    forward(sam, fixture_bytes("forward_gmail_inline.eml"), "sam.seller@gmail.com")
    email = EmailMessage.objects.get()
    assert email.message_id_synthesised is True
    assert "Logging this one" not in email.text_body
    assert list(Attachment.objects.filter(email=email).values_list("filename", flat=True)) == [
        "site-plan.pdf"
    ]


def test_forwarding_the_same_inline_original_twice_logs_it_once(sam):
    forward(sam, fixture_bytes("forward_thunderbird_inline.eml"), SAM)
    _, again = forward(sam, fixture_bytes("forward_thunderbird_inline.eml"), SAM)
    assert again.duplicate is True
    assert EmailMessage.objects.count() == 1
    assert Capture.objects.count() == 2


def test_a_forwarded_original_and_its_mailbox_copy_are_one_message(sam):
    data = fixture_bytes("forwarded_rfc822.eml")
    inner = data[data.index(b"From: Jane Doe") : data.rindex(b"--outer-b--")]
    _, synced = capture(inner, RawMessage.Channel.IMAP, user_id=make_user().pk)
    _, forwarded = forward(sam, data, SAM)
    assert forwarded.duplicate is True
    assert forwarded.email_id == synced.email_id


def test_a_forward_by_someone_else_to_the_users_capture_address_is_refused(sam):
    stranger_mail = fixture_bytes("forward_thunderbird_inline.eml").replace(
        b"From: Sam Seller <sam.seller@mailwarden-demo.com>",
        b"From: Eve <eve@evil.example>",
    )
    _raw, outcome = forward(sam, stranger_mail, "eve@evil.example")
    assert (outcome.status, outcome.reason_code) == (Status.REJECTED, "sender_not_allowed")
    assert EmailMessage.objects.count() == 0


def test_a_forward_whose_original_cannot_be_recovered_logs_the_wrapper_flagged(sam):
    body = (
        "see below\r\n\r\n-----Original Message-----\r\nFrom: Tom Buyer\r\n"
        "Sent: Monday, March 3, 2025 10:15 AM\r\n\r\nHi Sam, the samples arrived.\r\n"
    )
    wrapper = make_mail(
        message_id="<fwd-lost@mailwarden-demo.com>",
        subject="FW: samples",
        from_=f"Sam Seller <{SAM}>",
        to=PLACEHOLDER.decode(),
        body=body,
    )
    _, outcome = forward(sam, wrapper, SAM)
    assert outcome.status == Status.PROCESSED
    email = EmailMessage.objects.get()
    assert email.message_id == "fwd-lost@mailwarden-demo.com"
    assert email.subject == "FW: samples"
    assert email.forwarded_flag == "original_not_recovered"
    assert Capture.objects.get(email=email).user_id == sam.pk


def test_a_plain_bcc_logs_the_message_itself(sam):
    # Sam wrote to Jane and BCC'd his capture address: the address is only in the envelope
    _raw, outcome = forward(sam, fixture_bytes("nested_multipart.eml"), SAM)
    assert outcome.status == Status.PROCESSED
    email = EmailMessage.objects.get()
    assert email.message_id == "quote-0142.1741078860@mailwarden-demo.com"
    assert email.subject == "Your quote Q-2025-0142"
    assert email.from_address == SAM
    assert email.direction == EmailMessage.Direction.OUTBOUND
    assert email.forwarded_flag == ""
    assert Capture.objects.get(email=email).user_id == sam.pk


def test_a_bcc_of_mail_that_quotes_a_forward_is_not_unwrapped(sam):
    # Sam forwarded a customer's mail to a colleague and BCC'd the capture address: he logged
    # his own forward, not the customer's original
    data = fixture_bytes("forward_thunderbird_inline.eml").replace(
        PLACEHOLDER, b"kim@mailwarden-demo.com"
    )
    address = make_capture_address(sam)
    _, outcome = capture(
        data,
        RawMessage.Channel.SMTP,
        user_id=sam.pk,
        capture_address_id=address.pk,
        envelope_from=SAM,
        envelope_to=[address.address],
    )
    assert outcome.status == Status.PROCESSED
    email = EmailMessage.objects.get()
    assert email.message_id == "tb-fwd-123@mailwarden-demo.com"
    assert email.subject == "Fwd: Invoice question"
