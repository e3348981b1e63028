"""Mail for the data-subject tests: Tom Buyer (the data subject) writes to Sam (internal),
alone or with Jane (another customer), once with an attachment that carries his address."""

from __future__ import annotations

import base64

from capture.models import EmailMessage, RawMessage
from tests.capture.pipeline.helpers import capture, make_mail
from tests.factories import set_org_settings

TOM = "tom.buyer@globex.co.uk"
TOM_NAME = "Tom Buyer"
JANE = "jane.doe@acme-widgets.com"
SAM = "sam.seller@mailwarden-demo.com"


def captured(data: bytes, user=None) -> EmailMessage:
    raw, outcome = capture(data, user_id=user.pk if user else None)
    assert outcome.status == RawMessage.Status.PROCESSED, (raw.reason_code, raw.traceback)
    return EmailMessage.objects.get(pk=outcome.email_id)


def with_attachment(message_id: str, attachment: bytes, *, cc: str = "") -> bytes:
    encoded = base64.encodebytes(attachment).decode()
    body = (
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Card attached. Reach me at {TOM}.\r\n"
        "--b1\r\nContent-Type: text/vcard; name=tom.vcf\r\n"
        "Content-Disposition: attachment; filename=tom.vcf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{encoded}\r\n--b1--\r\n"
    )
    return make_mail(
        message_id=message_id,
        subject="My card",
        from_=f"{TOM_NAME} <{TOM}>",
        cc=cc,
        body=body,
        content_type='multipart/mixed; boundary="b1"',
    )


def subject_mail(user=None) -> dict[str, EmailMessage]:
    """alone: Tom is the only external participant; shared: Jane is there too (cc);
    card: shared, with an attachment holding Tom's address; other: mail without Tom."""
    set_org_settings(internal_domains=["mailwarden-demo.com"])
    alone = captured(
        make_mail(
            message_id="<alone@globex.co.uk>",
            from_=f"{TOM_NAME} <{TOM}>",
            subject="Delivery schedule",
            body=f"Regards, {TOM_NAME} ({TOM})",
        ),
        user,
    )
    shared = captured(
        make_mail(
            message_id="<shared@globex.co.uk>",
            from_=f"{TOM_NAME} <{TOM}>",
            cc=f"Jane Doe <{JANE}>",
            subject=f"Intro: {TOM_NAME} meets Jane",
            body=f"Jane, meet {TOM_NAME}: write to {TOM.upper()} any time.",
        ),
        user,
    )
    card = captured(
        with_attachment(
            "<card@globex.co.uk>",
            f"BEGIN:VCARD\r\nFN:{TOM_NAME}\r\nEMAIL:{TOM}\r\nEND:VCARD\r\n".encode(),
            cc=f"Jane Doe <{JANE}>",
        ),
        user,
    )
    other = captured(
        make_mail(
            message_id="<other@acme-widgets.com>",
            from_=f"Jane Doe <{JANE}>",
            subject="Unrelated",
            body="Nothing about him here.",
        ),
        user,
    )
    return {"alone": alone, "shared": shared, "card": card, "other": other}
