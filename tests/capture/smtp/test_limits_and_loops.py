"""Size limit, per-sender rate limit and loop protection."""

from __future__ import annotations

import smtplib

import pytest
from django.core.cache import cache

from capture.models import RawMessage, SmtpRateEvent
from capture.smtp import LOOP_HEADER
from capture.smtp.screening import local_counters
from tests.capture.smtp.conftest import build_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    local_counters.clear()
    yield
    cache.clear()
    local_counters.clear()


def test_a_message_over_the_size_limit_answers_552_534(make_listener, alice, alice_address):
    lst = make_listener(max_bytes=4096)
    data = build_message(
        sender=alice.email, to="bob@example.com", body="x" * 70 + "\n" * 100 + "y" * 5000
    )
    with smtplib.SMTP("127.0.0.1", lst.port, timeout=30) as client:
        client.ehlo("t")
        client.esmtp_features.pop("size")  # make smtplib send it anyway, without SIZE=
        with pytest.raises(smtplib.SMTPDataError) as exc:
            client.sendmail(alice.email, [alice_address.address], data)
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (552, b"5.3.4")
    assert not RawMessage.objects.exists()


def test_a_size_declared_over_the_limit_is_refused_at_mail_from(
    make_listener, alice, alice_address
):
    lst = make_listener(max_bytes=4096)
    with smtplib.SMTP("127.0.0.1", lst.port, timeout=30) as client:
        client.ehlo("t")
        code, msg = client.mail(alice.email, ["SIZE=100000"])
    assert (code, msg[:5]) == (552, b"5.3.4")


def test_the_rate_limit_answers_451_471_and_the_admin_sees_an_event(
    smtp, settings, alice, alice_address
):
    settings.MAILWARDEN_SMTP_RATE_LIMIT = 2
    for n in range(2):
        data = build_message(sender=alice.email, to="bob@example.com", subject=f"n{n}")
        assert smtp.sendmail(alice.email, [alice_address.address], data) == {}
    for _ in range(2):
        smtp.rset()
        smtp.mail(alice.email)
        code, msg = smtp.rcpt(alice_address.address)
        assert (code, msg[:5]) == (451, b"4.7.1")
    assert RawMessage.objects.count() == 2
    event = SmtpRateEvent.objects.get()
    assert (event.capture_address_id, event.reason, event.count) == (
        alice_address.pk,
        "rate_limit",
        2,
    )
    assert event.sender == alice.email


def test_the_rate_limit_counts_each_sender_separately(smtp, settings, alice, alice_address):
    from tests.factories import make_user_address

    settings.MAILWARDEN_SMTP_RATE_LIMIT = 1
    make_user_address(alice, "alice@other-brand.com")
    smtp.mail(alice.email)
    assert smtp.rcpt(alice_address.address)[0] == 250
    smtp.rset()
    smtp.mail("alice@other-brand.com")
    assert smtp.rcpt(alice_address.address)[0] == 250


def test_mail_carrying_our_loop_header_is_refused_and_counted(smtp, alice, alice_address):
    data = build_message(sender=alice.email, to="bob@example.com", **{LOOP_HEADER: "1"})
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail(alice.email, [alice_address.address], data)
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (550, b"5.7.1")
    assert b"loop" in exc.value.smtp_error.lower()
    assert SmtpRateEvent.objects.get().reason == "loop"
    assert not RawMessage.objects.exists()


def test_mail_from_our_own_default_from_address_is_never_recaptured(
    smtp, settings, alice, alice_address
):
    from tests.factories import make_user_address

    # Even if an admin made our own address one of alice's aliases.
    make_user_address(alice, settings.DEFAULT_FROM_EMAIL)
    data = build_message(sender=settings.DEFAULT_FROM_EMAIL, to=alice.email)
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail(settings.DEFAULT_FROM_EMAIL, [alice_address.address], data)
    assert exc.value.smtp_code == 550
    assert not RawMessage.objects.exists()


def test_the_same_message_id_arriving_again_and_again_is_a_loop(
    smtp, settings, alice, alice_address
):
    settings.MAILWARDEN_SMTP_LOOP_LIMIT = 2
    data = build_message(
        sender=alice.email, to="bob@example.com", Message_ID="<loop-1@mailwarden-demo.com>"
    )
    for _ in range(2):
        assert smtp.sendmail(alice.email, [alice_address.address], data) == {}
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail(alice.email, [alice_address.address], data)
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (550, b"5.4.6")
    assert RawMessage.objects.count() == 2
    assert SmtpRateEvent.objects.get().reason == "loop"


def test_too_many_received_headers_is_a_routing_loop(smtp, alice, alice_address):
    hops = b"".join(b"Received: from hop%d by mx;\r\n" % i for i in range(101))
    data = hops + build_message(sender=alice.email, to="bob@example.com")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail(alice.email, [alice_address.address], data)
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (550, b"5.4.6")
