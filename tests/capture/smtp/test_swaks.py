"""swaks, an independent SMTP client, against the listener."""

from __future__ import annotations

import subprocess

import pytest

from capture.models import RawMessage

pytestmark = pytest.mark.django_db(transaction=True)


def swaks(which, port, *args):
    return subprocess.run(
        [which("swaks"), "--server", f"127.0.0.1:{port}", "--timeout", "30", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_swaks_delivers_to_a_capture_address(which, listener, alice, alice_address):
    result = swaks(
        which,
        listener.port,
        "--from",
        alice.email,
        "--to",
        alice_address.address,
        "--header",
        f"From: {alice.email}",
        "--header",
        "Subject: hello from swaks",
    )
    assert result.returncode == 0, result.stdout
    assert "250 2.0.0" in result.stdout
    assert RawMessage.objects.get().capture_address_id == alice_address.pk


def test_swaks_pipelining_to_several_recipients(which, listener, alice, alice_address):
    from capture.addresses import create_shared_capture_address

    shared = create_shared_capture_address(alice, "shared")
    result = swaks(
        which,
        listener.port,
        "--pipeline",
        "--from",
        alice.email,
        "--to",
        f"{alice_address.address},{shared.address}",
        "--header",
        f"From: {alice.email}",
    )
    assert result.returncode == 0, result.stdout
    assert RawMessage.objects.count() == 2


def test_swaks_sees_550_511_for_an_unknown_address(which, listener, alice):
    result = swaks(
        which, listener.port, "--from", alice.email, "--to", "log+nobody@capture.localhost"
    )
    assert result.returncode != 0
    assert "550 5.1.1" in result.stdout


def test_swaks_sees_550_571_for_a_foreign_sender(which, listener, alice, alice_address):
    result = swaks(
        which,
        listener.port,
        "--from",
        "mallory@example.com",
        "--to",
        alice_address.address,
        "--header",
        "From: mallory@example.com",
    )
    assert result.returncode != 0
    assert "550 5.7.1" in result.stdout
    assert not RawMessage.objects.exists()
