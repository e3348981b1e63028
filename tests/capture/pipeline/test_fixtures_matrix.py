"""Every real mail fixture goes through the whole pipeline and ends processed or rejected
with the expected reason (never failed); the fields each one exists for are stored."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from capture.models import Attachment, EmailMessage, Meeting, RawMessage
from tests.capture.pipeline.helpers import MAIL_DIR, capture, fixture_bytes, make_mail

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
Dropped = Attachment.Dropped

EXPECTED_REJECTIONS = {
    "deep_30_levels.eml": "too_deep",
    "draft.eml": "draft",
}
ALL_FIXTURES = sorted(p.name for p in MAIL_DIR.glob("*.eml"))


def test_the_matrix_sees_the_fixture_directory():
    assert len(ALL_FIXTURES) >= 27
    assert set(EXPECTED_REJECTIONS) <= set(ALL_FIXTURES)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_ends_processed_or_rejected_with_the_expected_reason(name):
    raw, outcome = capture(fixture_bytes(name))
    expected = EXPECTED_REJECTIONS.get(name)
    assert raw.traceback == ""
    if expected is None:
        assert (outcome.status, outcome.reason_code) == (Status.PROCESSED, "")
        assert raw.status == Status.PROCESSED
        assert raw.email_id is not None
        assert raw.email_id == outcome.email_id
        assert raw.capture.email_id == raw.email_id
    else:
        assert (outcome.status, outcome.reason_code) == (Status.REJECTED, expected)
        assert raw.status == Status.REJECTED
        assert raw.reason_code == expected
        assert EmailMessage.objects.count() == 0


def email_of(name: str) -> EmailMessage:
    raw, outcome = capture(fixture_bytes(name))
    assert outcome.status == Status.PROCESSED, (outcome, raw.reason_detail, raw.traceback)
    return EmailMessage.objects.get(pk=outcome.email_id)


def test_a_calendar_invite_is_stored_as_a_meeting_with_recurrence_organizer_and_attendees():
    email = email_of("calendar_invite.eml")
    assert email.kind == EmailMessage.Kind.MEETING
    meeting = Meeting.objects.get(emails=email)
    assert meeting.rrule == "FREQ=WEEKLY;BYDAY=MO;COUNT=10"
    assert meeting.organizer == "jane.doe@acme-widgets.com"
    assert {a["address"] for a in meeting.attendees} == {
        "sam.seller@mailwarden-demo.com",
        "tom.buyer@globex.co.uk",
    }
    assert meeting.summary == "Weekly widget sync, Q2 planning"
    assert meeting.uid == "040000008200E00074C5B7101A82E0080000000050F1"
    assert meeting.sequence == 2
    assert meeting.start == datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


def test_plain_mail_is_stored_as_an_email_without_a_meeting():
    email = email_of("multipart_alternative.eml")
    assert email.kind == EmailMessage.Kind.EMAIL
    assert not Meeting.objects.exists()
    assert "500 blue widgets" in email.text_body
    assert "<b>500 blue widgets</b>" in email.html_body


def test_a_delivery_status_notification_is_stored_as_auto_generated_dsn():
    email = email_of("dsn.eml")
    assert email.auto_generated == "dsn"
    assert "auto_generated:dsn" in email.gate_reasons


def test_ordinary_mail_is_not_flagged_auto_generated():
    assert email_of("base64_and_qp.eml").auto_generated == ""


def test_mail_without_a_message_id_gets_a_synthesised_one():
    email = email_of("missing_message_id.eml")
    assert email.message_id_synthesised is True
    assert email.message_id.endswith("@mailwarden.invalid")


def test_mail_without_a_date_is_dated_on_receipt_and_flagged_missing():
    received = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)
    _raw, outcome = capture(fixture_bytes("missing_date.eml"), received_at=received)
    email = EmailMessage.objects.get(pk=outcome.email_id)
    assert email.date_flag == "missing"
    assert email.date == received


def test_a_dated_message_keeps_its_date_and_no_flag():
    email = email_of("multipart_alternative.eml")
    assert email.date_flag == ""
    assert email.date == datetime(2025, 3, 3, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("latin1_charset.eml", ("möchten", "Grüßen", "Jürgen Müller")),
        ("mislabelled_charset.eml", ("café", "€ 40", "“express”")),
    ],
)
def test_bodies_in_legacy_or_mislabelled_charsets_are_stored_with_their_accents(name, words):
    email = email_of(name)
    for word in words:
        assert word in email.text_body


def test_encoded_subject_and_attachment_filenames_are_stored_decoded():
    email = email_of("rfc2047_rfc2231.eml")
    assert email.subject == "Angebot für Größe XL \u2013 dringend"
    assert email.from_name == "Jürgen Müller"
    names = set(Attachment.objects.filter(email=email).values_list("filename", flat=True))
    # the third part's name tries a path traversal: only its last component is kept
    assert names == {"Preisübersicht Größen.xlsx", "Lieferbedingungen Änderung.pdf", "notes.txt"}
    assert email.has_attachments is True


def test_an_inline_image_is_recorded_as_dropped_inline_without_a_stored_blob():
    email = email_of("inline_image.eml")
    att = Attachment.objects.get(email=email)
    assert att.inline is True
    assert att.dropped == Dropped.INLINE
    assert att.blob is None
    assert att.filename == "image001.png"
    assert email.has_attachments is False


def test_a_large_attachment_is_kept_under_the_limit(settings):
    email = email_of("large_attachment.eml")
    att = Attachment.objects.get(email=email, filename="survey.zip")
    assert att.dropped == Dropped.KEPT
    assert att.blob is not None
    assert att.blob.size == att.size > 3_000_000


def test_an_attachment_over_the_limit_is_dropped_while_the_message_is_logged(settings):
    settings.MAILWARDEN_MAX_ATTACHMENT_BYTES = 1_000_000
    email = email_of("large_attachment.eml")
    att = Attachment.objects.get(email=email, filename="survey.zip")
    assert att.dropped == Dropped.TOO_LARGE
    assert att.blob is None
    assert att.size > 1_000_000
    assert "Photos attached" in email.text_body


def mail_with_attachments(*files: tuple[str, str, bytes]) -> bytes:
    parts = [
        "--att-b",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Here are the files.",
    ]
    for filename, ctype, payload in files:
        parts += [
            "--att-b",
            f'Content-Type: {ctype}; name="{filename}"',
            f'Content-Disposition: attachment; filename="{filename}"',
            "Content-Transfer-Encoding: base64",
            "",
            base64.b64encode(payload).decode(),
        ]
    parts.append("--att-b--")
    return make_mail(
        message_id="<files@globex.co.uk>",
        content_type='multipart/mixed; boundary="att-b"',
        body="\r\n".join(parts),
    )


def test_a_blocked_file_type_is_dropped_and_other_attachments_kept(settings):
    assert ".exe" in {
        t.lower() if t.startswith(".") else "." + t.lower()
        for t in settings.MAILWARDEN_BLOCKED_ATTACHMENT_TYPES
    }
    data = mail_with_attachments(
        ("setup.exe", "application/octet-stream", b"MZ\x90\x00fake program"),
        ("terms.pdf", "application/pdf", b"%PDF-1.4 fake"),
    )
    _raw, outcome = capture(data)
    assert outcome.status == Status.PROCESSED
    by_name = {a.filename: a for a in Attachment.objects.filter(email_id=outcome.email_id)}
    assert by_name["setup.exe"].dropped == Dropped.BLOCKED_TYPE
    assert by_name["setup.exe"].blob is None
    assert by_name["terms.pdf"].dropped == Dropped.KEPT
    assert by_name["terms.pdf"].blob is not None


def test_a_body_over_the_limit_is_truncated_and_flagged(settings):
    settings.MAILWARDEN_MAX_BODY_CHARS = 20
    email = email_of("multipart_alternative.eml")
    assert email.body_truncated is True
    assert len(email.text_body) == 20
    assert email.text_body == "Hi Sam,\n\ncould you s"


def test_a_body_under_the_limit_is_not_flagged_truncated():
    assert email_of("multipart_alternative.eml").body_truncated is False
