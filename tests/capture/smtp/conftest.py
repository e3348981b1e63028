"""Fixtures for the SMTP listener tests: a real listener on a random loopback port."""

from __future__ import annotations

import email.policy
import smtplib
from email.message import EmailMessage

import pytest

from capture.addresses import get_or_create_capture_address
from tests.factories import make_user


def build_message(
    *, sender: str, to: str, subject: str = "hello", body: str = "Hi there.\n", **headers: str
) -> bytes:
    """A CRLF message (smtplib sends bytes as they are, RFC 5321 wants CRLF)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def listener(transactional_db, settings):
    """An in-process listener (own thread and event loop) that only stores raw mail."""
    from capture.smtp.server import start_listener_thread

    thread = start_listener_thread(host="127.0.0.1", port=0, process=False, window_ms=1)
    yield thread
    thread.stop(grace=5)


@pytest.fixture
def alice(transactional_db):
    return make_user(username="alice", email="alice@mailwarden-demo.com")


@pytest.fixture
def alice_address(alice):
    return get_or_create_capture_address(alice)


@pytest.fixture
def smtp(listener):
    """A connected smtplib client; closed after the test."""
    client = smtplib.SMTP("127.0.0.1", listener.port, timeout=30)
    client.ehlo("client.test")
    yield client
    try:
        client.quit()
    except smtplib.SMTPException:
        pass
