"""Text PostgreSQL refuses (a NUL, a lone surrogate) in any part of a message, its envelope or
the add-in's choices: the message ends processed with U+FFFD in its place, never failed
(capture/textsafe.py, applied where parsed text and raw specs enter the model)."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

from capture.models import Attachment, EmailMessage, Meeting, Participant, RawMessage
from tests.capture.pipeline.helpers import capture, fixture_bytes, make_mail
from tests.factories import make_capture_address, make_user

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
BAD = "\ufffd"


def processed(data: bytes, channel: str = RawMessage.Channel.API, **fields) -> EmailMessage:
    raw, outcome = capture(data, channel, **fields)
    assert (outcome.status, outcome.reason_code) == (Status.PROCESSED, ""), (
        raw.reason_detail,
        raw.traceback,
    )
    assert raw.traceback == ""
    return EmailMessage.objects.get(pk=outcome.email_id)


def with_part(part: bytes) -> bytes:
    """A multipart/mixed message: a short text, then `part` (its headers, a blank line, body)."""
    head = make_mail(content_type='multipart/mixed; boundary="b1"', body="").split(b"\r\n\r\n")[0]
    return b"\r\n".join(
        [
            head,
            b"",
            b"--b1",
            b"Content-Type: text/plain; charset=utf-8",
            b"",
            b"See the attachment.",
            b"--b1",
            part,
            b"--b1--",
            b"",
        ]
    )


def test_a_nul_byte_in_a_header_is_stored_as_a_replacement_character():
    email = processed(make_mail(subject="Delivery\x00 schedule"))
    assert email.subject == f"Delivery{BAD} schedule"
    assert ["Subject", f"Delivery{BAD} schedule"] in email.headers


def test_a_nul_in_an_encoded_display_name_is_stored_as_a_replacement_character():
    email = processed(make_mail(from_="=?utf-8?q?Tom=00Buyer?= <tom.buyer@globex.co.uk>"))
    assert email.from_name == f"Tom{BAD}Buyer"
    assert Participant.objects.get(email=email, role="from").name == f"Tom{BAD}Buyer"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("8bit", "Monday\x00 works."), ("quoted-printable", "Monday=00 works.")],
)
def test_a_nul_in_a_text_body_is_stored_as_a_replacement_character(encoding, body):
    data = make_mail(body=body, extra_headers=(f"Content-Transfer-Encoding: {encoding}",))
    email = processed(data)
    assert email.text_body.strip() == f"Monday{BAD} works."


def test_a_nul_in_an_html_body_is_stored_as_a_replacement_character():
    data = make_mail(
        content_type="text/html; charset=utf-8",
        body=base64.b64encode(b"<p>Monday\x00 works.</p>").decode(),
        extra_headers=("Content-Transfer-Encoding: base64",),
    )
    email = processed(data)
    assert email.html_body == f"<p>Monday{BAD} works.</p>"


def test_hostile_text_in_an_attachment_name_and_content_id_is_stored_as_replacement_characters():
    # RFC 2231 in UTF-7: "+2AA-" decodes to a lone surrogate (U+D800)
    data = with_part(
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-7''offer%2B2AA-.pdf\r\n"
        b"Content-ID: <part\x001@globex.co.uk>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"%PDF-1.4 offer")
    )
    email = processed(data)
    attachment = Attachment.objects.get(email=email)
    assert attachment.filename == f"offer{BAD}.pdf"
    assert attachment.content_id == f"part{BAD}1@globex.co.uk"


CALENDAR = (
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:nul-1@globex.co.uk\r\n"
    "SUMMARY:Weekly\x00sync\r\nLOCATION:Room\x00 4\r\n"
    "ORGANIZER;CN=Tom\x00Buyer:mailto:tom.buyer@globex.co.uk\r\n"
    "ATTENDEE;CN=Sam\x00Seller:mailto:sam.seller@mailwarden-demo.com\r\n"
    "DTSTART:20250310T090000Z\r\nDTEND:20250310T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_a_nul_in_a_calendar_field_is_stored_as_a_replacement_character():
    data = with_part(
        b'Content-Type: text/calendar; method=REQUEST; charset="utf-8"\r\n\r\n' + CALENDAR.encode()
    )
    email = processed(data)
    meeting = Meeting.objects.get(messages__email=email)
    assert meeting.summary == f"Weekly{BAD}sync"
    assert meeting.location == f"Room{BAD} 4"
    assert meeting.attendees == [
        {"address": "sam.seller@mailwarden-demo.com", "name": f"Sam{BAD}Seller"}
    ]


def test_a_nul_or_lone_surrogate_in_an_addin_category_is_stored_as_a_replacement_character():
    from capture.models import Category

    user = make_user()
    # Only categories an admin defined are stored (capture/categories.py): these two exist.
    Category.objects.create(name=f"quote{BAD}")
    Category.objects.create(name=f"widgets{BAD}")
    email = processed(
        fixture_bytes("multipart_alternative.eml"),
        RawMessage.Channel.ADDIN,
        user_id=user.pk,
        options={"categories": ["quote\x00", "widgets\ud800"], "links": {}},
    )
    assert email.categories == [f"quote{BAD}", f"widgets{BAD}"]
    assert RawMessage.objects.get().options["categories"] == [f"quote{BAD}", f"widgets{BAD}"]


@pytest.mark.parametrize("category", ["quote\x00", "quote\ud800"], ids=["nul", "surrogate"])
def test_the_capture_api_answers_400_for_a_category_postgresql_could_not_store(category):
    from crm.models import ApiToken

    user = make_user()
    _, key = ApiToken.issue(user=user, name="add-in", scopes=["capture:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    data = fixture_bytes("multipart_alternative.eml")
    # json.dumps writes both as escapes ("\u0000", "\ud800"), which JSON allows
    body = {"mime_base64": base64.b64encode(data).decode(), "categories": [category]}
    response = client.post("/api/v1/captures/", json.dumps(body), content_type="application/json")
    # DRF's CharField refuses both (a client error), before anything is stored
    assert response.status_code == 400, response.content
    assert not RawMessage.objects.exists()


def test_a_nul_in_the_envelope_and_source_is_stored_as_a_replacement_character():
    user = make_user(email="sam.seller@mailwarden-demo.com")
    address = make_capture_address(user)
    raw, outcome = capture(
        make_mail(),
        RawMessage.Channel.SMTP,
        user_id=user.pk,
        capture_address_id=address.pk,
        envelope_from="tom.buyer\x00@globex.co.uk",
        envelope_to=[f"{address.address}\x00"],
        source="smtp:\x00peer",
    )
    assert raw.envelope_from == f"tom.buyer{BAD}@globex.co.uk"
    assert raw.envelope_to == [f"{address.address}{BAD}"]
    assert raw.source == f"smtp:{BAD}peer"
    # the envelope sender is not the user's: a reason, not a failure
    assert (outcome.status, outcome.reason_code) == (Status.REJECTED, "sender_not_allowed")
    assert raw.traceback == ""


@pytest.mark.parametrize(
    "data",
    [
        make_mail(subject="=?utf-7?q?Delivery_+2AA-_schedule?="),
        make_mail(content_type="text/plain; charset=utf-7", body="Delivery +2AA- schedule"),
        make_mail(
            content_type="text/plain; charset=unicode-escape", body="Delivery \\ud800 schedule"
        ),
    ],
    ids=["utf-7 encoded word", "utf-7 body", "unicode-escape body"],
)
def test_a_lone_surrogate_from_a_charset_is_stored_as_a_replacement_character(data):
    email = processed(data)
    assert f"Delivery {BAD} schedule" in email.subject + email.text_body


def test_a_nul_in_an_inline_forwarded_header_is_stored_as_a_replacement_character():
    user = make_user(email="sam.seller@mailwarden-demo.com")
    address = make_capture_address(user)
    data = fixture_bytes("forward_thunderbird_inline.eml")
    inline_subject = b"Subject: \tInvoice question"
    assert inline_subject in data
    data = data.replace(inline_subject, b"Subject: =?utf-8?q?Invoice=00question?=")
    data = data.replace(b"capture+sam@mailwarden-demo.com", address.address.encode())
    email = processed(
        data,
        RawMessage.Channel.SMTP,
        user_id=user.pk,
        capture_address_id=address.pk,
        envelope_from="sam.seller@mailwarden-demo.com",
        envelope_to=[address.address],
    )
    assert email.message_id_synthesised  # the original, recovered from the inline forward
    assert email.subject == f"Invoice{BAD}question"
