from __future__ import annotations

import hashlib
import quopri
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from capture.errors import InputRejected
from capture.mime.ids import normalize_message_id, normalize_subject
from capture.mime.parse import parse_email
from capture.mime.types import ParseLimits

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
RECEIVED_AT = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, **kwargs):
    return parse_email(load(name), received_at=RECEIVED_AT, **kwargs)


def addresses(entries) -> list[str]:
    return [a.address for a in entries]


# --------------------------------------------------------------------------- fixtures


def test_multipart_alternative_gives_text_and_html_bodies_and_normalised_addresses():
    mail = parse("multipart_alternative.eml")
    assert mail.message_id == "CAF1a2b3c4d5e6@mail.acme-widgets.com"
    assert not mail.message_id_synthesised
    assert mail.subject == "Quote for 500 blue widgets"
    assert mail.date == datetime(2025, 3, 3, 9, 15, tzinfo=UTC)
    assert mail.date_flag == ""
    assert addresses(mail.from_) == ["jane.doe@acme-widgets.com"]
    assert mail.from_[0].name == "Jane Doe"
    assert addresses(mail.to) == ["sam.seller@mailwarden-demo.com"]
    assert mail.to[0].raw == "Sam Seller <Sam.Seller@MailWarden-Demo.com>"
    assert mail.cc[0].name == "Procurement, ACME"
    assert mail.text_body.startswith("Hi Sam,\n\ncould you send us a quote")
    assert "<b>500 blue widgets</b>" in mail.html_body
    assert mail.attachments == ()
    assert mail.defects == ()
    assert mail.auto_generated == ""
    assert mail.size == len(load("multipart_alternative.eml"))


def test_all_top_level_headers_are_kept_in_order():
    mail = parse("multipart_alternative.eml")
    names = [name for name, _ in mail.headers]
    assert names[:3] == ["Return-Path", "Received", "From"]
    received = dict(mail.headers)["Received"]
    assert "\n" not in received and "by mx.mailwarden-demo.com" in received


def test_nested_multipart_finds_bodies_inline_logo_and_pdf_attachment():
    mail = parse("nested_multipart.eml")
    assert mail.text_body.endswith("Sam Seller \u2013 Mailwarden Demo")
    assert 'src="cid:logo@mailwarden-demo.com"' in mail.html_body
    logo, pdf = mail.attachments
    assert (logo.filename, logo.content_type, logo.inline) == ("logo.png", "image/png", True)
    assert logo.content_id == "logo@mailwarden-demo.com"
    assert logo.payload.startswith(b"\x89PNG")
    assert (pdf.filename, pdf.content_type, pdf.inline) == (
        "Q-2025-0142.pdf",
        "application/pdf",
        False,
    )
    assert pdf.size == len(pdf.payload) and pdf.payload.startswith(b"%PDF-1.4")
    assert pdf.sha256 == hashlib.sha256(pdf.payload).hexdigest()


def test_quoted_printable_and_base64_bodies_are_decoded():
    mail = parse("base64_and_qp.eml")
    assert mail.text_body.startswith("Grüße aus München \u2013 the price is 12,50 € per unit.\n")
    assert "because it exceeds seventy-six characters" in mail.text_body
    assert mail.html_body == "<p>Grüße aus München &ndash; the price is 12,50 € per unit.</p>"


def test_latin1_body_and_rfc2047_latin1_headers_are_decoded():
    mail = parse("latin1_charset.eml")
    assert mail.subject == "Bestellung für nächste Woche"
    assert mail.from_[0].name == "Jürgen Müller"
    assert "wir möchten 20 Stück bestellen. Größe: XL." in mail.text_body
    assert "charset_mislabelled" not in mail.defects


def test_mislabelled_charset_falls_back_to_cp1252_and_is_flagged():
    mail = parse("mislabelled_charset.eml")
    assert "the \u201cexpress\u201d option costs \u20ac 40 \u2013 café" in mail.text_body
    assert "charset_mislabelled" in mail.defects
    assert "\ufffd" not in mail.text_body


def test_rfc2047_names_and_subject_and_rfc2231_filenames_are_decoded():
    mail = parse("rfc2047_rfc2231.eml")
    assert mail.subject == "Angebot für Größe XL \u2013 dringend"
    assert mail.from_[0].name == "Jürgen Müller"
    assert [a.name for a in mail.to] == ["Élodie Bernard", "Sam Seller"]
    names = [a.filename for a in mail.attachments]
    assert names == ["Preisübersicht Größen.xlsx", "Lieferbedingungen Änderung.pdf", "notes.txt"]


def test_attachment_filenames_lose_path_components():
    mail = parse("rfc2047_rfc2231.eml")
    notes = mail.attachments[-1]
    assert notes.filename == "notes.txt"
    assert notes.content_type == "text/plain"
    assert mail.text_body == "Anbei die Preisliste."


def test_missing_message_id_is_synthesised_from_content_and_flagged():
    mail = parse("missing_message_id.eml")
    assert mail.message_id_synthesised
    assert mail.message_id.endswith("@mailwarden.invalid")
    assert len(mail.message_id.split("@")[0]) == 64
    assert "missing_message_id" in mail.defects


def test_synthesised_message_id_ignores_transport_headers():
    raw = load("missing_message_id.eml")
    relayed = (
        b"Received: from relay.example.net by mx.mailwarden-demo.com; Tue, 11 Mar 2025\r\n"
        b"Return-Path: <jane.doe@acme-widgets.com>\r\n" + raw
    )
    first = parse_email(raw, received_at=RECEIVED_AT)
    second = parse_email(relayed, received_at=RECEIVED_AT + timedelta(hours=1))
    assert first.message_id == second.message_id


def test_synthesised_message_id_changes_with_the_body():
    raw = load("missing_message_id.eml")
    other = raw.replace(b"3pm", b"4pm")
    assert (
        parse_email(raw, received_at=RECEIVED_AT).message_id
        != parse_email(other, received_at=RECEIVED_AT).message_id
    )


def test_invalid_message_id_is_replaced_and_flagged():
    raw = load("missing_message_id.eml").replace(
        b"Subject:", b"Message-ID: not an id\r\nSubject:", 1
    )
    mail = parse_email(raw, received_at=RECEIVED_AT)
    assert mail.message_id_synthesised
    assert "invalid_message_id" in mail.defects


def test_missing_date_falls_back_to_received_at():
    mail = parse("missing_date.eml")
    assert mail.date == RECEIVED_AT
    assert mail.date_flag == "missing"
    assert "missing_date" in mail.defects


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        (b"yesterday at noon", "invalid"),
        (b"Mon, 01 Jan 1973 10:00:00 +0000", "absurd"),
        (b"Fri, 01 Jan 2100 10:00:00 +0000", "absurd"),
    ],
)
def test_unparseable_or_absurd_dates_fall_back_to_received_at(value, flag):
    raw = load("missing_date.eml").replace(b"Subject:", b"Date: " + value + b"\r\nSubject:", 1)
    mail = parse_email(raw, received_at=RECEIVED_AT)
    assert mail.date == RECEIVED_AT
    assert mail.date_flag == flag
    assert f"{flag}_date" in mail.defects


def test_date_a_few_hours_after_receipt_is_accepted_for_clock_skew():
    raw = load("missing_date.eml").replace(
        b"Subject:", b"Date: Tue, 01 Apr 2025 20:00:00 +0000\r\nSubject:", 1
    )
    mail = parse_email(raw, received_at=RECEIVED_AT)
    assert mail.date == datetime(2025, 4, 1, 20, 0, tzinfo=UTC)
    assert mail.date_flag == ""


def test_bare_lf_message_parses_and_is_flagged():
    mail = parse("bare_lf.eml")
    assert b"\r\n" not in load("bare_lf.eml")
    assert "bare_lf" in mail.defects
    assert mail.subject == "Interested in widgets"
    assert mail.text_body == "Hello, I saw your widgets at the fair.\nCan you send a catalogue?"
    assert mail.html_body.startswith("<p>Hello")
    assert addresses(mail.from_) == ["priya@gmail.com"]


def test_crlf_message_is_not_flagged_as_bare_lf():
    assert "bare_lf" not in parse("multipart_alternative.eml").defects


def test_attached_message_is_parsed_as_a_forwarded_email():
    mail = parse("forwarded_rfc822.eml")
    assert mail.text_body == "FYI, for the Globex deal."
    assert mail.attachments == ()
    (original,) = mail.forwarded
    assert original.message_id == "original-7781@mail.acme-widgets.com"
    assert original.subject == "Widget order 7781"
    assert addresses(original.from_) == ["jane.doe@acme-widgets.com"]
    assert addresses(original.to) == ["tom.buyer@globex.co.uk"]
    assert original.text_body == "Tom, order 7781 ships Monday."
    assert [a.filename for a in original.attachments] == ["order-7781.pdf"]
    assert original.size > 0


def test_calendar_invite_yields_a_recurring_event_with_people_and_times():
    mail = parse("calendar_invite.eml")
    (event,) = mail.calendar
    assert event.uid == "040000008200E00074C5B7101A82E0080000000050F1"
    assert event.method == "REQUEST"
    assert event.summary == "Weekly widget sync, Q2 planning"
    assert event.location == "Room 4.12; Berlin office"
    assert event.sequence == 2
    assert event.rrule == "FREQ=WEEKLY;BYDAY=MO;COUNT=10"
    assert event.organizer is not None
    assert (event.organizer.address, event.organizer.name) == (
        "jane.doe@acme-widgets.com",
        "Doe, Jane",
    )
    assert [(a.address, a.name) for a in event.attendees] == [
        ("sam.seller@mailwarden-demo.com", "Sam Seller"),
        ("tom.buyer@globex.co.uk", "Buyer, Tom"),  # folded across two lines in the .ics
    ]
    berlin = ZoneInfo("Europe/Berlin")
    assert event.start == datetime(2025, 3, 10, 10, 0, tzinfo=berlin)
    assert event.end == datetime(2025, 3, 10, 9, 0, tzinfo=UTC) + timedelta(hours=1)
    assert mail.attachments == ()  # the alternative text/calendar part is not a file


def _calendar_mail(ics: str) -> bytes:
    body = ics.replace("\n", "\r\n")
    return (
        "From: jane.doe@acme-widgets.com\r\nTo: sam.seller@mailwarden-demo.com\r\n"
        "Subject: Invite\r\nDate: Fri, 07 Mar 2025 09:00:00 +0100\r\n"
        "Message-ID: <cal@acme-widgets.com>\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n"
        + body
    ).encode()


def test_calendar_unknown_tzid_is_treated_as_utc_with_a_defect():
    ics = (
        "BEGIN:VCALENDAR\nMETHOD:CANCEL\nBEGIN:VEVENT\nUID:x1\n"
        "DTSTART;TZID=Mars/Olympus_Mons:20250310T100000\nDURATION:PT30M\n"
        "END:VEVENT\nEND:VCALENDAR\n"
    )
    mail = parse_email(_calendar_mail(ics), received_at=RECEIVED_AT)
    (event,) = mail.calendar
    assert event.method == "CANCEL"
    assert event.start == datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 10, 10, 30, tzinfo=UTC)
    assert "calendar_unknown_tzid" in mail.defects


def test_calendar_all_day_and_utc_times_and_windows_zone_names():
    ics = (
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nDTSTART;VALUE=DATE:20250310\n"
        "DTEND;VALUE=DATE:20250311\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\n"
        "DTSTART:20250310T100000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:c\n"
        'DTSTART;TZID="W. Europe Standard Time":20250310T100000\nEND:VEVENT\nEND:VCALENDAR\n'
    )
    a, b, c = parse_email(_calendar_mail(ics), received_at=RECEIVED_AT).calendar
    assert (a.start, a.end) == (
        datetime(2025, 3, 10, tzinfo=UTC),
        datetime(2025, 3, 11, tzinfo=UTC),
    )
    assert b.start == datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
    assert c.start == datetime(2025, 3, 10, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert (a.rrule, a.sequence, a.organizer, a.attendees) == ("", 0, None, ())


def test_delivery_status_report_is_classified_as_dsn():
    mail = parse("dsn.eml")
    assert mail.auto_generated == "dsn"
    assert "550 5.1.1 User unknown" in mail.text_body
    assert mail.from_[0].address == "mailer-daemon@mx.mailwarden-demo.com"


def test_out_of_office_reply_is_classified_as_ooo():
    mail = parse("out_of_office.eml")
    assert mail.auto_generated == "ooo"
    assert mail.in_reply_to == "quote-0142.1741078860@mailwarden-demo.com"


@pytest.mark.parametrize(
    "subject",
    [b"Automatic reply: Preise", b"Out of Office: Preise", b"Abwesenheitsnotiz"],
)
def test_out_of_office_subject_patterns_are_recognised(subject):
    raw = load("missing_date.eml").replace(b"Subject: No date on this one", b"Subject: " + subject)
    assert parse_email(raw, received_at=RECEIVED_AT).auto_generated == "ooo"


def test_a_person_mentioning_the_office_is_not_an_auto_reply():
    raw = load("missing_date.eml").replace(
        b"Subject: No date on this one", b"Subject: Out of office supplies, can you help?"
    )
    assert parse_email(raw, received_at=RECEIVED_AT).auto_generated == ""


def test_auto_submitted_header_marks_auto_generated_mail():
    raw = load("missing_date.eml").replace(
        b"Subject:", b"Auto-Submitted: auto-generated\r\nSubject:"
    )
    assert parse_email(raw, received_at=RECEIVED_AT).auto_generated == "auto-generated"
    raw = load("missing_date.eml").replace(b"Subject:", b"Auto-Submitted: no\r\nSubject:")
    assert parse_email(raw, received_at=RECEIVED_AT).auto_generated == ""


def test_mailing_list_mail_is_classified_as_bulk():
    mail = parse("mailing_list.eml")
    assert mail.auto_generated == "bulk"
    assert normalize_subject(mail.subject) == "march issue: tariffs and steel prices"


def test_undisclosed_recipients_group_is_empty_and_named_groups_are_flattened():
    mail = parse("group_syntax.eml")
    assert mail.to == ()
    assert addresses(mail.cc) == [
        "tom.buyer@globex.co.uk",
        "bernd.becker@initech.de",
        "sam.seller@mailwarden-demo.com",
    ]
    assert mail.cc[1].name == "Becker, Bernd"
    assert not any(d.startswith("invalid_address") for d in mail.defects)


def test_unicode_domain_and_its_idna_form_normalise_to_the_same_domain():
    mail = parse("idna_domain.eml")
    sender = mail.from_[0]
    assert sender.address == "bjoern@xn--bcher-khler-xfb5e.de"
    assert sender.name == "Björn Köhler"
    assert "bücher-köhler.de" in sender.raw
    assert mail.cc[0].address.split("@")[1] == sender.address.split("@")[1]
    assert mail.text_body == "Wir hätten gern 10 Widgets.\n"


def test_invalid_addresses_are_kept_as_invalid_entries_and_flagged_per_header():
    mail = parse("invalid_addresses.eml")
    assert [(a.address, a.valid) for a in mail.to] == [
        ("john.doe@acme-widgets.com", True),
        ("", False),
        ("", False),
        ("sam.seller@mailwarden-demo.com", True),
    ]
    assert mail.to[0].name == "Doe, John"
    assert [a.raw for a in mail.to[1:3]] == ["not-an-address", "<broken@>"]
    assert [a.valid for a in mail.cc] == [False, False]
    assert mail.cc[0].name == "Loop"
    assert {"invalid_address:to", "invalid_address:cc", "invalid_address:reply-to"} <= set(
        mail.defects
    )
    assert "invalid_address:from" not in mail.defects


def test_address_without_angle_brackets_after_a_name_is_recovered():
    (sender,) = parse("invalid_addresses.eml").from_
    assert (sender.address, sender.name, sender.valid) == (
        "jane.doe@acme-widgets.com",
        "Jane Doe",
        True,
    )


def test_inline_image_in_related_part_is_flagged_inline():
    mail = parse("inline_image.eml")
    (image,) = mail.attachments
    assert image.inline
    assert image.content_id == "image001.png@01DB9402.2A2B2C30"
    assert mail.text_body == ""
    assert "cid:image001.png" in mail.html_body


def test_non_image_parts_with_inline_disposition_stay_real_attachments():
    # Apple Mail sends PDFs as "Content-Disposition: inline"; they are documents, not logos.
    raw = load("nested_multipart.eml").replace(
        b'Content-Disposition: attachment; filename="Q-2025-0142.pdf"',
        b'Content-Disposition: inline; filename="Q-2025-0142.pdf"',
    )
    pdf = parse_email(raw, received_at=RECEIVED_AT).attachments[-1]
    assert pdf.filename == "Q-2025-0142.pdf" and not pdf.inline


def test_reply_carries_in_reply_to_and_deduplicated_references():
    first = parse("reply_in_thread_1.eml")
    reply = parse("reply_in_thread_2.eml")
    assert reply.in_reply_to == first.message_id == "thread-msg-2@globex.co.uk"
    assert reply.references == ("thread-msg-1@mailwarden-demo.com", "thread-msg-2@globex.co.uk")
    assert normalize_subject(reply.subject) == normalize_subject(first.subject)
    assert normalize_subject(reply.subject) == "delivery schedule"


def test_draft_marker_sets_is_draft():
    assert parse("draft.eml").is_draft
    assert not parse("multipart_alternative.eml").is_draft


def test_large_attachment_is_decoded_whole():
    mail = parse("large_attachment.eml")
    (archive,) = mail.attachments
    assert archive.size == 3 * 1024 * 1024
    assert archive.filename == "survey.zip"


# --------------------------------------------------------------------------- limits


def test_message_over_the_size_limit_is_rejected_before_parsing():
    with pytest.raises(InputRejected) as info:
        parse("large_attachment.eml", limits=ParseLimits(max_bytes=1024 * 1024))
    assert info.value.code == "too_large"


def test_thirty_nested_multiparts_are_rejected_as_too_deep():
    with pytest.raises(InputRejected) as info:
        parse("deep_30_levels.eml")
    assert info.value.code == "too_deep"


def test_nesting_within_the_limit_is_accepted():
    mail = parse("deep_30_levels.eml", limits=ParseLimits(max_depth=40))
    assert mail.text_body == "bottom"  # the CRLF before a boundary belongs to the boundary


def test_extremely_deep_nesting_is_rejected_without_crashing():
    depth = 5000
    body = b"Content-Type: text/plain\r\n\r\nx\r\n"
    for i in range(depth):
        body = (
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
            + body
            + b"--b%d--\r\n" % i
        )
    raw = b"From: a@acme-widgets.com\r\nSubject: deep\r\n" + body
    with pytest.raises(InputRejected) as info:
        parse_email(raw, received_at=RECEIVED_AT)
    assert info.value.code == "too_deep"


def test_too_many_parts_are_rejected():
    with pytest.raises(InputRejected) as info:
        parse("nested_multipart.eml", limits=ParseLimits(max_parts=3))
    assert info.value.code == "too_many_parts"


def test_too_many_headers_are_rejected():
    raw = b"X-Spam: 1\r\n" * 20 + load("missing_date.eml")
    with pytest.raises(InputRejected) as info:
        parse_email(raw, received_at=RECEIVED_AT, limits=ParseLimits(max_headers=10))
    assert info.value.code == "too_many_headers"


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n  "])
def test_empty_input_is_rejected_as_empty(raw):
    with pytest.raises(InputRejected) as info:
        parse_email(raw, received_at=RECEIVED_AT)
    assert info.value.code == "empty"


@pytest.mark.parametrize(
    "raw", [b"%PDF-1.4\n%%EOF\n", b"<html><body>hello</body></html>", bytes(range(256))]
)
def test_non_mail_input_is_rejected_as_not_email(raw):
    with pytest.raises(InputRejected) as info:
        parse_email(raw, received_at=RECEIVED_AT)
    assert info.value.code == "not_email"


def test_long_bodies_are_truncated_and_flagged():
    mail = parse("multipart_alternative.eml", limits=ParseLimits(max_body_chars=10))
    assert mail.body_truncated
    assert mail.text_body == "Hi Sam,\n\nc"
    assert len(mail.html_body) == 10


def test_naive_received_at_is_treated_as_utc():
    mail = parse_email(load("missing_date.eml"), received_at=datetime(2025, 4, 1, 12, 0))
    assert mail.date == RECEIVED_AT


def test_bad_base64_is_decoded_leniently_and_flagged():
    raw = load("nested_multipart.eml").replace(b"JVBERi0xLjQK", b"JVBERi0x!!LjQK", 1)
    mail = parse_email(raw, received_at=RECEIVED_AT)
    assert "bad_base64" in mail.defects
    assert mail.attachments[-1].filename == "Q-2025-0142.pdf"


def test_raw_utf8_headers_are_decoded():
    raw = load("missing_date.eml").replace(
        b"Subject: No date on this one", "Subject: Größe für Köln".encode()
    )
    assert parse_email(raw, received_at=RECEIVED_AT).subject == "Größe für Köln"


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@example.com>", "abc@example.com"),
        ("  <abc@example.com> (comment)", "abc@example.com"),
        ("abc@example.com", "abc@example.com"),
        ("<abc@\r\n example.com>", "abc@example.com"),
        ("", ""),
        ("<>", ""),
        ("<no-at-sign>", ""),
        ("not an id", ""),
    ],
)
def test_normalize_message_id_takes_the_inner_id_or_nothing(value, expected):
    assert normalize_message_id(value) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: AW: Delivery schedule", "delivery schedule"),
        ("RE: Fwd: FW: WG: SV: VS: TR: Réf: Offer", "offer"),
        ("Re[2]: Offer", "offer"),
        ("[sales] Re: [sales] Offer  for   2025", "offer for 2025"),
        ("Fw:Offer", "offer"),
        ("Regarding the offer", "regarding the offer"),
        ("AW:", ""),
    ],
)
def test_normalize_subject_strips_prefixes_and_list_tags(subject, expected):
    assert normalize_subject(subject) == expected


# --------------------------------------------------------------------------- robustness


def _mutations(count: int, seed: int = 20250401):
    rnd = random.Random(seed)
    sources = [load(p.name) for p in sorted(FIXTURES.glob("*.eml")) if p.stat().st_size < 100_000]
    for _ in range(count):
        raw = bytearray(rnd.choice(sources))
        kind = rnd.randrange(5)
        if kind == 0:  # truncate
            raw = raw[: rnd.randrange(len(raw) + 1)]
        elif kind == 1:  # flip random bytes
            for _ in range(rnd.randrange(1, 30)):
                raw[rnd.randrange(len(raw))] = rnd.randrange(256)
        elif kind == 2:  # splice random garbage in
            pos = rnd.randrange(len(raw) + 1)
            raw[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
        elif kind == 3:  # delete a chunk
            start = rnd.randrange(len(raw) + 1)
            del raw[start : start + rnd.randrange(1, 400)]
        else:  # duplicate a chunk (repeated boundaries, headers)
            start = rnd.randrange(len(raw) + 1)
            chunk = raw[start : start + rnd.randrange(1, 400)]
            raw[start:start] = chunk * rnd.randrange(1, 5)
        yield bytes(raw)


def test_random_mutations_never_raise_anything_but_input_rejected():
    for raw in _mutations(300):
        try:
            mail = parse_email(raw, received_at=RECEIVED_AT)
        except InputRejected:
            continue
        assert mail.size == len(raw)
        assert mail.date.tzinfo is not None


def test_random_bytes_never_raise_anything_but_input_rejected():
    rnd = random.Random(7)
    for _ in range(100):
        raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 2000)))
        try:
            parse_email(raw, received_at=RECEIVED_AT)
        except InputRejected:
            pass


def test_an_attached_message_encoded_in_base64_is_decoded_and_parsed():
    # RFC 2046 allows only 7bit/8bit/binary for message/rfc822, but some clients encode an
    # attached .eml in base64: the stdlib would parse the base64 text as the message.
    mail = parse("forwarded_rfc822_base64.eml")
    assert "encoded_message_part" in mail.defects
    (original,) = mail.forwarded
    assert original.message_id == "original-7781@mail.acme-widgets.com"
    assert original.subject == "Widget order 7781"
    assert addresses(original.from_) == ["jane.doe@acme-widgets.com"]
    assert original.text_body == "Tom, order 7781 ships Monday."
    assert [a.filename for a in original.attachments] == ["order-7781.pdf"]
    plain = parse("forwarded_rfc822.eml").forwarded[0]
    assert original.attachments[0].sha256 == plain.attachments[0].sha256


def test_an_attached_message_encoded_in_quoted_printable_is_decoded_and_parsed():
    inner = (
        "From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.de>\r\nTo: tom@example.com\r\n"
        "Subject: Preise\r\nMessage-ID: <qp-inner@example.de>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Gr\u00fc\u00dfe aus M\u00fcnchen, Preis = 42\r\n" + "x" * 120 + "\r\n"
    ).encode()
    encoded = quopri.encodestring(inner).replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    assert b"=\r\n" in encoded and b"=3D" in encoded  # soft breaks and an encoded '='
    outer = (
        b"From: tom@example.com\r\nTo: alice@example.com\r\nSubject: Fwd: Preise\r\n"
        b"Message-ID: <qp-outer@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + encoded
        + b"\r\n--b--\r\n"
    )
    mail = parse_email(outer, received_at=RECEIVED_AT)
    (original,) = mail.forwarded
    assert original.message_id == "qp-inner@example.de"
    assert [(a.address, a.name) for a in original.from_] == [("juergen@example.de", "J\u00fcrgen")]
    assert original.text_body == "Gr\u00fc\u00dfe aus M\u00fcnchen, Preis = 42\n" + "x" * 120 + "\n"


def test_an_attached_message_labelled_base64_that_is_plain_text_is_kept_as_parsed():
    outer = load("forwarded_rfc822.eml").replace(
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n",
    )
    (original,) = parse_email(outer, received_at=RECEIVED_AT).forwarded
    assert original.message_id == "original-7781@mail.acme-widgets.com"
    assert [a.filename for a in original.attachments] == ["order-7781.pdf"]
