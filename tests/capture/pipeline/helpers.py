"""Shared helpers for the pipeline behaviour tests: store raw mail, process it, count rows."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from capture.demo import generate_demo_messages
from capture.intake import RawSpec, store_raw_message, store_raw_messages
from capture.models import (
    Attachment,
    Blob,
    Capture,
    EmailMessage,
    Meeting,
    MessageRef,
    Participant,
    RawMessage,
    ReviewItem,
    Thread,
    ThreadLink,
)
from capture.pipeline import ProcessOutcome, process_raw_message, process_raw_messages
from crm.models import Contact, ContactEmail, Organization
from governance.models import AuditEvent

MAIL_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "mail"

COUNTED = (
    RawMessage,
    EmailMessage,
    Thread,
    Capture,
    Participant,
    MessageRef,
    ThreadLink,
    Attachment,
    Blob,
    Meeting,
    ReviewItem,
    Contact,
    ContactEmail,
    Organization,
    AuditEvent,
)


def fixture_bytes(name: str) -> bytes:
    return (MAIL_DIR / name).read_bytes()


def store(data: bytes, channel: str = RawMessage.Channel.API, **fields) -> RawMessage:
    """Store raw bytes without queueing: the test decides when processing runs."""
    return store_raw_message(RawSpec(data=data, channel=channel, **fields), enqueue=False)


def capture(
    data: bytes, channel: str = RawMessage.Channel.API, **fields
) -> tuple[RawMessage, ProcessOutcome]:
    """Store and process one message; returns the refreshed raw row and the outcome."""
    raw = store(data, channel, **fields)
    outcome = process_raw_message(raw.pk)
    raw.refresh_from_db()
    return raw, outcome


def table_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def make_mail(
    *,
    message_id: str | None = "<m1@globex.co.uk>",
    subject: str = "Delivery schedule for April",
    from_: str = "Tom Buyer <tom.buyer@globex.co.uk>",
    to: str = "Sam Seller <sam.seller@mailwarden-demo.com>",
    cc: str = "",
    date: datetime | None = datetime(2025, 3, 24, 9, 0, tzinfo=UTC),
    in_reply_to: str = "",
    references: str = "",
    body: str = "Monday works for us.",
    extra_headers: tuple[str, ...] = (),
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    """A small RFC 5322 message with CRLF line endings, for cases no fixture covers."""
    lines = [f"From: {from_}", f"To: {to}"]
    if cc:
        lines.append(f"Cc: {cc}")
    lines.append(f"Subject: {subject}")
    if date is not None:
        lines.append(f"Date: {format_datetime(date)}")
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    lines.extend(extra_headers)
    lines += ["MIME-Version: 1.0", f"Content-Type: {content_type}", "", body, ""]
    return "\r\n".join(lines).encode("utf-8")


def ingest_generated_mail(
    *,
    seed: int,
    customers: list[tuple[str, str]],
    channel: str = RawMessage.Channel.API,
    user_id: int | None = None,
    n: int = 40,
) -> None:
    """Generate `n` messages (capture.demo) between Alice Archer (alice@mailwarden-demo.com)
    and `customers`, then store and process them in one batch; every one must end processed.
    Every fifth is left out, as a colleague's mail that was never captured: the replies to it
    reference a missing parent, which is what makes MessageRef rows."""
    mail = generate_demo_messages(
        n=n,
        seed=seed,
        internal=[("Alice Archer", "alice@mailwarden-demo.com")],
        customers=customers,
        start=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    )
    mail = [m for i, m in enumerate(mail) if i % 5 != 4]
    raws = store_raw_messages(
        [RawSpec(data=m.data, channel=channel, user_id=user_id) for m in mail], enqueue=False
    )
    outcomes = process_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {RawMessage.Status.PROCESSED}
