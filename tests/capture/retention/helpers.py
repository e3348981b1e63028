"""Helpers of the retention tests: real mail through the real pipeline (raw files, blobs)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime

from capture.intake import RawSpec, store_raw_message
from capture.models import Blob, EmailMessage, RawMessage, RetentionPolicy
from capture.pipeline import process_raw_message

OLD = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)


def mail(
    mid: str,
    *,
    frm: str = "Tom Buyer <tom.buyer@globex.example>",
    to: str = "Sam Seller <sam@mailwarden-demo.com>",
    subject: str = "Delivery schedule",
    date: datetime = OLD,
    body: str = "Monday works for us.",
    in_reply_to: str = "",
    attachment: bytes | None = None,
) -> bytes:
    m = MimeMessage()
    m["From"], m["To"], m["Subject"] = frm, to, subject
    m["Date"] = format_datetime(date)
    m["Message-ID"] = f"<{mid}>"
    if in_reply_to:
        m["In-Reply-To"] = f"<{in_reply_to}>"
        m["References"] = f"<{in_reply_to}>"
    m.set_content(body)
    if attachment is not None:
        m.add_attachment(attachment, maintype="application", subtype="pdf", filename="offer.pdf")
    return bytes(m)


def capture(data: bytes, channel: str = RawMessage.Channel.API, user=None) -> EmailMessage:
    raw = store_raw_message(
        RawSpec(data=data, channel=channel, user_id=user.pk if user else None), enqueue=False
    )
    outcome = process_raw_message(raw.pk)
    assert outcome.status == "processed", outcome
    return EmailMessage.objects.get(pk=outcome.email_id)


def policy(name: str = "policy", **fields) -> RetentionPolicy:
    orgs = fields.pop("organizations", ())
    fields.setdefault("duration_days", 30)
    p = RetentionPolicy.objects.create(name=name, **fields)
    if orgs:
        p.organizations.set(orgs)
    return p


def stored_files() -> set[str]:
    """Every file of the raw and blob stores (local or S3), as 'raw:<rel>' / 'blob:<rel>'."""
    from tests.filestore import stored_objects

    return set(stored_objects())


def referenced_files() -> set[str]:
    raws = {
        f"raw:{p}"
        for p in RawMessage.objects.exclude(storage_path="").values_list("storage_path", flat=True)
    }
    return raws | {f"blob:{p}" for p in Blob.objects.values_list("storage_path", flat=True)}
