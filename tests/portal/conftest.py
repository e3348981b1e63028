"""Fixtures of the admin portal tests: staff users, captured mail through the real pipeline."""

from __future__ import annotations

import itertools

import pytest

from tests.factories import make_user

_n = itertools.count(1)


@pytest.fixture
def superuser(db):
    return make_user(username="boss", password="pw-boss", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def message_bytes(
    subject: str = "Hello",
    sender: str = "ann@customer.example",
    to: str = "bob@mailwarden-demo.com",
) -> bytes:
    n = next(_n)
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <portal-{n}@customer.example>\r\nDate: Mon, 1 Dec 2026 10:00:00 +0000\r\n"
        f"\r\nBody {n}\r\n"
    ).encode()


@pytest.fixture
def capture_mail(db):
    """capture_mail(channel=..., user=..., capture_address=..., mailbox=..., data=...) -> RawMessage
    stored and processed by the real pipeline."""
    from capture.intake import RawSpec, store_raw_messages
    from capture.pipeline import process_raw_messages

    def capture(
        *, channel="api", user=None, capture_address=None, mailbox=None, data=None, source=""
    ):
        spec = RawSpec(
            data=data or message_bytes(),
            channel=channel,
            user_id=user.pk if user else None,
            capture_address_id=capture_address.pk if capture_address else None,
            mailbox_id=mailbox.pk if mailbox else None,
            source=source,
        )
        (raw,) = store_raw_messages([spec], enqueue=False, fsync=False)
        process_raw_messages([raw.pk])
        raw.refresh_from_db()
        assert raw.status == "processed", (raw.reason_code, raw.reason_detail)
        return raw

    return capture
