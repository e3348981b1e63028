"""Each SMTP answer the listener gives, from a real smtplib client."""

from __future__ import annotations

import smtplib

import pytest

from capture.addresses import revoke_capture_address, rotate_capture_address
from capture.models import RawMessage
from capture.storage import read_raw
from tests.capture.smtp.conftest import build_message

pytestmark = pytest.mark.django_db(transaction=True)


def test_mail_from_the_owner_is_stored_before_250(smtp, alice, alice_address):
    data = build_message(sender=alice.email, to="bob@example.com")
    refused = smtp.sendmail(alice.email, [alice_address.address], data)
    assert refused == {}
    raw = RawMessage.objects.get()
    assert raw.channel == RawMessage.Channel.SMTP
    assert raw.user_id == alice.pk
    assert raw.capture_address_id == alice_address.pk
    assert raw.envelope_from == alice.email
    assert raw.envelope_to == [alice_address.address]
    assert read_raw(raw.storage_path) == data


def test_unknown_capture_address_answers_550_511(smtp, alice):
    smtp.mail(alice.email)
    code, msg = smtp.rcpt("log+0000deadbeef@capture.localhost")
    assert (code, msg[:5]) == (550, b"5.1.1")


def test_an_address_at_another_domain_answers_550_511(smtp, alice, alice_address):
    smtp.mail(alice.email)
    code, msg = smtp.rcpt(alice_address.address.replace("capture.localhost", "example.com"))
    assert (code, msg[:5]) == (550, b"5.1.1")


def test_the_capture_domain_is_case_insensitive(smtp, alice, alice_address):
    smtp.mail(alice.email)
    code, _ = smtp.rcpt(alice_address.address.replace("capture.localhost", "Capture.LOCALHOST"))
    assert code == 250


def test_a_revoked_address_answers_550_511(smtp, alice, alice_address):
    revoke_capture_address(alice_address, alice)
    smtp.mail(alice.email)
    code, msg = smtp.rcpt(alice_address.address)
    assert (code, msg[:5]) == (550, b"5.1.1")


def test_after_rotation_the_old_token_answers_550_and_the_new_one_250(smtp, alice, alice_address):
    new = rotate_capture_address(alice_address, alice)
    smtp.mail(alice.email)
    assert smtp.rcpt(alice_address.address)[0] == 550
    assert smtp.rcpt(new.address)[0] == 250


def test_a_foreign_envelope_sender_answers_550_571_at_data(smtp, alice, alice_address):
    data = build_message(sender=alice.email, to="bob@example.com")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail("mallory@example.com", [alice_address.address], data)
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (550, b"5.7.1")
    assert not RawMessage.objects.exists()


def test_a_foreign_from_header_answers_550_571(smtp, alice, alice_address):
    data = build_message(sender="Mallory <mallory@example.com>", to="bob@example.com")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail(alice.email, [alice_address.address], data)
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (550, b"5.7.1")
    assert not RawMessage.objects.exists()


def test_an_alias_of_the_owner_may_send(smtp, alice, alice_address):
    from tests.factories import make_user_address

    make_user_address(alice, "alice.smith@mailwarden-demo.com")
    data = build_message(sender="Alice <Alice.Smith@mailwarden-demo.com>", to="bob@example.com")
    assert smtp.sendmail("alice.smith@mailwarden-demo.com", [alice_address.address], data) == {}
    assert RawMessage.objects.count() == 1


def test_a_null_sender_bounce_is_refused(smtp, alice, alice_address):
    data = build_message(sender=alice.email, to="bob@example.com")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail("<>", [alice_address.address], data)
    assert exc.value.smtp_code == 550


def test_ehlo_announces_size_8bitmime_smtputf8_and_pipelining(smtp, settings):
    assert smtp.has_extn("size")
    assert int(smtp.esmtp_features["size"]) == settings.MAILWARDEN_MAX_MESSAGE_BYTES
    for ext in ("8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes"):
        assert smtp.has_extn(ext), ext
    assert not smtp.has_extn("auth")
    assert not smtp.has_extn("starttls")  # no certificate configured
