from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from capture.forwarding import extract_forwarded_original, html_to_text, parse_loose_date
from capture.mime import ParsedEmail, parse_email

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
RECEIVED_AT = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def wrapper(name: str) -> ParsedEmail:
    return parse_email((FIXTURES / name).read_bytes(), received_at=RECEIVED_AT)


def text_wrapper(text: str, **changes) -> ParsedEmail:
    """The Thunderbird fixture with its body replaced: a plain forward wrapper."""
    return replace(wrapper("forward_thunderbird_inline.eml"), text_body=text, **changes)


def extract(mail: ParsedEmail):
    return extract_forwarded_original(mail, received_at=RECEIVED_AT)


def people(addresses) -> list[tuple[str, str]]:
    return [(a.address, a.name) for a in addresses]


def test_attached_original_is_returned_with_all_its_headers():
    result = extract(wrapper("forwarded_rfc822.eml"))
    assert (result.method, result.recovered_headers) == ("attached", True)
    assert result.parsed is not None
    assert result.parsed.message_id == "original-7781@mail.acme-widgets.com"
    assert not result.parsed.message_id_synthesised
    assert [a.filename for a in result.parsed.attachments] == ["order-7781.pdf"]


def test_gmail_inline_forward_recovers_sender_recipients_date_and_body():
    result = extract(wrapper("forward_gmail_inline.eml"))
    assert (result.method, result.recovered_headers) == ("inline", True)
    original = result.parsed
    assert original is not None
    assert people(original.from_) == [("tom.buyer@globex.co.uk", "Tom Buyer")]
    assert people(original.to) == [("sam.seller@gmail.com", "Sam Seller")]
    assert people(original.cc) == [("anna.lee@globex.co.uk", "Anna Lee")]
    assert original.subject == "Samples for Globex"
    assert original.date == datetime(2025, 3, 17, 10, 15, tzinfo=UTC)
    assert original.date_flag == ""
    assert original.text_body == "Hi Sam,\n\ncan you send two samples to our Leeds site?\n\nTom"
    assert original.message_id_synthesised
    assert original.message_id.endswith("@mailwarden.invalid")


def test_wrapper_attachments_that_are_not_inline_belong_to_the_inline_original():
    original = extract(wrapper("forward_gmail_inline.eml")).parsed
    assert original is not None
    assert [a.filename for a in original.attachments] == ["site-plan.pdf"]


def test_inline_images_of_the_wrapper_do_not_move_to_the_original():
    mail = wrapper("forward_gmail_inline.eml")
    logo = replace(mail.attachments[0], filename="logo.png", inline=True)
    original = extract(replace(mail, attachments=(*mail.attachments, logo))).parsed
    assert original is not None
    assert [a.filename for a in original.attachments] == ["site-plan.pdf"]


def test_gmail_html_only_forward_is_read_from_the_html_body():
    mail = wrapper("forward_gmail_inline.eml")
    result = extract(replace(mail, text_body=""))
    assert result.method == "inline"
    assert result.parsed is not None
    assert people(result.parsed.from_) == [("tom.buyer@globex.co.uk", "Tom Buyer")]
    assert result.parsed.subject == "Samples for Globex"
    assert result.parsed.text_body.startswith("Hi Sam,")


def test_german_outlook_forward_with_separator_line_is_recognised():
    result = extract(wrapper("forward_outlook_inline.eml"))
    assert (result.method, result.recovered_headers) == ("inline", True)
    original = result.parsed
    assert original is not None
    assert people(original.from_) == [("j.mueller@initech.de", "Müller, Jürgen")]
    assert people(original.to) == [
        ("sam.seller@mailwarden-demo.com", "Sam Seller"),
        ("bernd.becker@initech.de", "Becker, Bernd"),
    ]
    assert people(original.cc) == [("einkauf@initech.de", "Einkauf")]
    assert original.subject == "Rahmenvertrag 2025"
    assert original.date == datetime(2025, 3, 20, 16, 2, tzinfo=UTC)
    assert original.text_body.startswith("Hallo Herr Seller,")
    assert "Zur Info" not in original.text_body


def test_english_outlook_original_message_with_mailto_brackets():
    text = (
        "Please log.\n\n-----Original Message-----\n"
        "From: Jane Doe [mailto:jane.doe@acme-widgets.com]\n"
        "Sent: Monday, March 3, 2025 10:15 AM\n"
        "To: Sam Seller; Tom Buyer <tom.buyer@globex.co.uk>\n"
        "Subject: RE: Quote\n\nWe accept the quote.\n"
    )
    original = extract(text_wrapper(text)).parsed
    assert original is not None
    assert people(original.from_) == [("jane.doe@acme-widgets.com", "Jane Doe")]
    assert original.date == datetime(2025, 3, 3, 10, 15, tzinfo=UTC)
    assert [a.valid for a in original.to] == [False, True]  # Outlook printed a name only
    assert "invalid_address:to" in original.defects
    assert original.text_body == "We accept the quote."


def test_apple_mail_forward_is_recognised():
    result = extract(wrapper("forward_apple_inline.eml"))
    assert (result.method, result.recovered_headers) == ("inline", True)
    original = result.parsed
    assert original is not None
    assert people(original.from_) == [("elodie.bernard@globex.co.uk", "Elodie Bernard")]
    assert original.date == datetime(2025, 3, 21, 17, 30, 12, tzinfo=UTC)
    assert original.subject == "Meeting notes"
    assert original.text_body == "Sam, here are the notes from today's meeting.\n\nElodie"


def test_apple_mail_forward_with_quoted_lines_is_unquoted():
    text = (
        "Begin forwarded message:\n\n> From: Elodie Bernard <elodie.bernard@globex.co.uk>\n"
        "> Subject: Meeting notes\n> Date: 21 March 2025 at 17:30:12 GMT+1\n"
        "> To: sam.seller@icloud.com\n> \n> Notes attached.\n> Elodie\n"
    )
    original = extract(text_wrapper(text)).parsed
    assert original is not None
    assert people(original.from_) == [("elodie.bernard@globex.co.uk", "Elodie Bernard")]
    assert original.date == datetime(2025, 3, 21, 16, 30, 12, tzinfo=UTC)
    assert original.text_body == "Notes attached.\nElodie"


def test_thunderbird_forward_with_tab_separated_headers_is_recognised():
    result = extract(wrapper("forward_thunderbird_inline.eml"))
    original = result.parsed
    assert original is not None and result.method == "inline"
    assert people(original.from_) == [("bernd.becker@initech.de", "Bernd Becker")]
    assert original.subject == "Invoice question"
    assert original.date == datetime(2025, 3, 21, 11, 5, tzinfo=timezone(timedelta(hours=1)))
    assert original.text_body.startswith("Hello Sam,")


def test_same_inline_forward_twice_gives_the_same_synthesised_message_id():
    first = extract(wrapper("forward_gmail_inline.eml")).parsed
    again = extract(replace(wrapper("forward_gmail_inline.eml"), subject="Fwd: other")).parsed
    assert first is not None and again is not None
    assert first.message_id == again.message_id


def test_unparseable_inline_date_falls_back_to_received_at_with_invalid_flag():
    text = (
        "---------- Forwarded message ---------\nFrom: Tom Buyer <tom.buyer@globex.co.uk>\n"
        "Date: sometime last week\nSubject: Samples\n\nHi\n"
    )
    original = extract(text_wrapper(text)).parsed
    assert original is not None
    assert (original.date, original.date_flag) == (RECEIVED_AT, "invalid")


def test_inline_block_without_a_sender_address_is_flagged_unrecovered():
    text = (
        "-----Original Message-----\nFrom: Tom Buyer\nSent: Monday, March 3, 2025 10:15 AM\n\nHi\n"
    )
    result = extract(text_wrapper(text))
    assert result.method == "inline"
    assert not result.recovered_headers


def test_marker_without_a_header_block_is_not_a_forward():
    result = extract(text_wrapper("---------- Forwarded message ---------\n\nno headers here\n"))
    assert (result.parsed, result.method, result.recovered_headers) == (None, "none", False)


def test_ordinary_mail_is_not_a_forward():
    result = extract(wrapper("multipart_alternative.eml"))
    assert (result.parsed, result.method, result.recovered_headers) == (None, "none", False)


def test_attached_original_wins_over_inline_when_the_note_is_short():
    mail = wrapper("forwarded_rfc822.eml")
    text = (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Someone <someone@initech.de>\n"
        "Subject: other\n\nbody\n"
    )
    assert extract(replace(mail, text_body=text)).method == "attached"


def test_inline_wins_over_an_attachment_when_the_user_wrote_a_long_text_above_it():
    mail = wrapper("forwarded_rfc822.eml")
    text = (
        "Long explanation. "
        * 40
        + "\n\n---------- Forwarded message ---------\nFrom: Someone <someone@initech.de>\n"
        "Subject: other\n\nbody\n"
    )
    result = extract(replace(mail, text_body=text))
    assert result.method == "inline"
    assert result.parsed is not None
    assert people(result.parsed.from_) == [("someone@initech.de", "Someone")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 21 Mar 2025 11:05:00 +0100", datetime(2025, 3, 21, 10, 5, tzinfo=UTC)),
        ("Monday, March 3, 2025 10:15 AM", datetime(2025, 3, 3, 10, 15, tzinfo=UTC)),
        ("Mon, Mar 3, 2025 at 10:15 PM", datetime(2025, 3, 3, 22, 15, tzinfo=UTC)),
        ("Mon, 3 Mar 2025 at 10:15", datetime(2025, 3, 3, 10, 15, tzinfo=UTC)),
        ("21 March 2025 at 17:30:12 GMT+1", datetime(2025, 3, 21, 16, 30, 12, tzinfo=UTC)),
        ("Donnerstag, 20. März 2025 16:02", datetime(2025, 3, 20, 16, 2, tzinfo=UTC)),
        ("3 mars 2025 à 10:15", datetime(2025, 3, 3, 10, 15, tzinfo=UTC)),
    ],
)
def test_parse_loose_date_reads_the_formats_clients_print(value, expected):
    assert parse_loose_date(value) == expected


def test_parse_loose_date_returns_none_for_prose():
    assert parse_loose_date("sometime last week") is None
    assert parse_loose_date("") is None


def test_html_to_text_keeps_line_structure_and_drops_markup():
    markup = (
        "<html><head><style>p{}</style></head><body><p>Hi&nbsp;Sam,</p>"
        "<div>From: <b>Tom</b> &lt;tom@x.com&gt;<br>To: you</div><script>x()</script></body></html>"
    )
    assert html_to_text(markup) == "Hi Sam,\nFrom: Tom <tom@x.com>\nTo: you"


def test_damaged_forward_texts_never_raise():
    rnd = random.Random(5)
    mail = wrapper("forward_gmail_inline.eml")
    for _ in range(300):
        text = bytearray(mail.text_body.encode())
        for _ in range(rnd.randrange(1, 20)):
            text[rnd.randrange(len(text))] = rnd.choice(b"\n:<>@-_ ;,*\t")
        result = extract(replace(mail, text_body=text.decode("utf-8", "replace")))
        assert result.method in ("inline", "none", "attached")


def test_an_original_attached_in_base64_is_recovered_with_all_its_headers():
    result = extract(wrapper("forwarded_rfc822_base64.eml"))
    assert (result.method, result.recovered_headers) == ("attached", True)
    assert result.parsed is not None
    assert result.parsed.message_id == "original-7781@mail.acme-widgets.com"
    assert [a.filename for a in result.parsed.attachments] == ["order-7781.pdf"]
