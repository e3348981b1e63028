"""Trusting an upstream MTA's Authentication-Results (RFC 8601)."""

from __future__ import annotations

import smtplib

import pytest

from capture.models import RawMessage
from capture.smtp.authresults import auth_failure, parse_auth_results
from tests.capture.smtp.conftest import build_message


def test_only_headers_from_the_trusted_authserv_id_are_read():
    headers = [
        "evil.example; dmarc=fail header.from=a.com",
        "mx.mailwarden.test; dkim=pass header.d=a.com; spf=pass smtp.mailfrom=a.com; dmarc=pass",
    ]
    assert parse_auth_results(headers, "mx.mailwarden.test") == {
        "dkim": "pass",
        "spf": "pass",
        "dmarc": "pass",
    }
    assert auth_failure(headers, "mx.mailwarden.test") is None
    assert auth_failure(headers, "evil.example") == "dmarc=fail"


def test_a_version_number_and_comments_do_not_hide_a_failure():
    headers = [
        "MX.Mailwarden.Test 1; (checked by opendmarc) dmarc=fail (p=reject dis=none) header.from=a.com"
    ]
    assert auth_failure(headers, "mx.mailwarden.test") == "dmarc=fail"


def test_one_passing_dkim_signature_outweighs_a_failing_one():
    headers = ["mx.t; dkim=fail header.d=old.com; dkim=pass header.d=a.com"]
    assert auth_failure(headers, "mx.t") is None


def test_without_a_trusted_id_nothing_is_read():
    assert auth_failure(["mx.t; dmarc=fail"], "") is None


def _fail_message(alice):
    return build_message(
        sender=alice.email,
        to="bob@example.com",
        Authentication_Results="mx.mailwarden.test; spf=pass smtp.mailfrom=x; dmarc=fail header.from=mailwarden-demo.com",
    )


@pytest.mark.django_db(transaction=True)
def test_a_dmarc_failure_is_accepted_but_quarantined(smtp, settings, alice, alice_address):
    settings.MAILWARDEN_SMTP_TRUST_AUTH_RESULTS = "mx.mailwarden.test"
    assert smtp.sendmail(alice.email, [alice_address.address], _fail_message(alice)) == {}
    assert RawMessage.objects.get().options == {"quarantine": "dmarc=fail"}


@pytest.mark.django_db(transaction=True)
def test_a_dmarc_failure_is_refused_when_the_action_is_reject(smtp, settings, alice, alice_address):
    settings.MAILWARDEN_SMTP_TRUST_AUTH_RESULTS = "mx.mailwarden.test"
    settings.MAILWARDEN_SMTP_AUTH_FAIL_ACTION = "reject"
    with pytest.raises(smtplib.SMTPDataError) as exc:
        smtp.sendmail(alice.email, [alice_address.address], _fail_message(alice))
    assert (exc.value.smtp_code, exc.value.smtp_error[:5]) == (550, b"5.7.1")
    assert not RawMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_authentication_results_are_ignored_unless_trusted(smtp, alice, alice_address):
    assert smtp.sendmail(alice.email, [alice_address.address], _fail_message(alice)) == {}
    assert RawMessage.objects.get().options == {}
