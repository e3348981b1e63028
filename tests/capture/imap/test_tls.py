"""TLS (implicit and STARTTLS) and XOAUTH2 against a real Dovecot (the tls_dovecot fixture):
its certificate comes from a throwaway CA that only MAILWARDEN_IMAP_CA_FILE makes trusted,
and it validates OAuth2 access tokens (JWTs) itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from capture.imap.credentials import set_secret
from capture.imap.mailboxes import resume_mailbox
from capture.imap.sync import sync_mailbox
from capture.models import MailboxConnection, RawMessage
from governance.models import AuditEvent
from tests.capture.imap.conftest import make_message
from tests.capture.imap.dovecot import make_access_token
from tests.services import require_service

pytestmark = pytest.mark.django_db

Sec = MailboxConnection.Security
Auth = MailboxConnection.Auth


@pytest.fixture
def trust_test_ca(tls_dovecot, settings):
    settings.MAILWARDEN_IMAP_CA_FILE = str(tls_dovecot.pki.ca_file)


@pytest.fixture
def trust_system_store_only(settings):
    settings.MAILWARDEN_IMAP_CA_FILE = ""


@pytest.fixture
def tls_mailbox(tls_dovecot, make_mailbox):
    """A mailbox on tls_dovecot: implicit TLS by default; security=STARTTLS uses the plain port."""

    def make(security=Sec.TLS, **overrides) -> MailboxConnection:
        port = tls_dovecot.tls_port if security == Sec.TLS else tls_dovecot.port
        fields = {"host": tls_dovecot.host, "port": port, "security": security}
        fields.update(overrides)
        return make_mailbox(**fields)

    return make


def _stored(mailbox: MailboxConnection) -> int:
    return RawMessage.objects.filter(mailbox=mailbox).count()


# --------------------------------------------------------------------------- TLS


def test_implicit_tls_syncs_with_the_configured_ca(tls_dovecot, tls_mailbox, trust_test_ca):
    mailbox = tls_mailbox(Sec.TLS)
    tls_dovecot.append(mailbox.username, "INBOX", [make_message(), make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok", report.error
    assert report.total("stored") == 2
    assert _stored(mailbox) == 2
    mailbox.refresh_from_db()
    assert (mailbox.last_error, mailbox.consecutive_errors) == ("", 0)


def test_starttls_syncs_and_checks_the_name_localhost(tls_dovecot, tls_mailbox, trust_test_ca):
    # The certificate names "localhost" (DNS) and 127.0.0.1 (IP): this run checks the DNS name.
    mailbox = tls_mailbox(Sec.STARTTLS, host="localhost")
    tls_dovecot.append(mailbox.username, "INBOX", [make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok", report.error
    assert _stored(mailbox) == 1


@pytest.mark.parametrize("security", [Sec.TLS, Sec.STARTTLS])
def test_an_untrusted_certificate_is_an_error_not_an_auth_failure(
    tls_dovecot, tls_mailbox, trust_system_store_only, settings, security
):
    settings.MAILWARDEN_IMAP_MAX_AUTH_FAILURES = 2
    mailbox = tls_mailbox(security)
    tls_dovecot.append(mailbox.username, "INBOX", [make_message()])

    for _ in range(3):  # more runs than the auth-failure limit
        report = sync_mailbox(mailbox.pk, enqueue=False)
        assert report.status == "error"

    mailbox.refresh_from_db()
    assert "TLS certificate rejected" in mailbox.last_error
    assert "unable to get local issuer certificate" in mailbox.last_error
    assert "MAILWARDEN_IMAP_CA_FILE" in mailbox.last_error  # tells the admin what to do
    if security == Sec.STARTTLS:
        assert "STARTTLS" in mailbox.last_error
    assert mailbox.consecutive_errors == 3
    assert mailbox.consecutive_auth_failures == 0
    assert mailbox.paused_reason == ""
    assert mailbox.lease_until is None
    assert _stored(mailbox) == 0
    assert not AuditEvent.objects.filter(
        action="mailbox.paused", object_id=str(mailbox.pk)
    ).exists()


def test_the_host_name_is_checked_even_with_a_trusted_ca(tls_dovecot, tls_mailbox, trust_test_ca):
    # The imaps port also answers on another loopback address, which the certificate does not name.
    require_service(tls_dovecot.alt_host is not None, "a second loopback address (127.0.0.2)")
    mailbox = tls_mailbox(Sec.TLS, host=tls_dovecot.alt_host)
    tls_dovecot.append(mailbox.username, "INBOX", [make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "error"
    mailbox.refresh_from_db()
    assert "TLS certificate rejected" in mailbox.last_error
    assert "mismatch" in mailbox.last_error
    assert "MAILWARDEN_IMAP_CA_FILE" not in mailbox.last_error  # the CA is not the problem
    assert mailbox.consecutive_auth_failures == 0
    assert _stored(mailbox) == 0


def test_starttls_to_a_server_without_it_fails_without_logging_in(
    dovecot, make_mailbox, trust_system_store_only
):
    # The plain test instance has ssl = no: it does not offer STARTTLS.
    mailbox = make_mailbox(security=Sec.STARTTLS)
    dovecot.append(mailbox.username, "INBOX", [make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "error"
    mailbox.refresh_from_db()
    assert "does not offer STARTTLS" in mailbox.last_error
    assert mailbox.consecutive_auth_failures == 0
    assert _stored(mailbox) == 0


def test_a_ca_file_that_cannot_be_loaded_is_recorded(tls_mailbox, settings, tmp_path):
    settings.MAILWARDEN_IMAP_CA_FILE = str(tmp_path / "missing.pem")
    mailbox = tls_mailbox(Sec.TLS)

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "error"
    mailbox.refresh_from_db()
    assert "MAILWARDEN_IMAP_CA_FILE" in mailbox.last_error
    assert "No such file" in mailbox.last_error
    assert mailbox.consecutive_auth_failures == 0

    not_a_cert = tmp_path / "garbage.pem"
    not_a_cert.write_text("not a certificate\n")
    settings.MAILWARDEN_IMAP_CA_FILE = str(not_a_cert)
    sync_mailbox(mailbox.pk, enqueue=False)
    mailbox.refresh_from_db()
    assert "NO_CERTIFICATE_OR_CRL_FOUND" in mailbox.last_error
    assert mailbox.consecutive_auth_failures == 0


# --------------------------------------------------------------------------- XOAUTH2


def test_xoauth2_with_a_valid_access_token_syncs(tls_dovecot, tls_mailbox, trust_test_ca):
    user = tls_dovecot.new_user()
    mailbox = tls_mailbox(
        Sec.TLS, username=user, auth=Auth.XOAUTH2, password=tls_dovecot.access_token(user)
    )
    tls_dovecot.append(user, "INBOX", [make_message(), make_message()])

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "ok", report.error
    assert _stored(mailbox) == 2


def test_a_wrong_access_token_counts_as_an_auth_failure_and_pauses(
    tls_dovecot, tls_mailbox, trust_test_ca, settings
):
    settings.MAILWARDEN_IMAP_MAX_AUTH_FAILURES = 2
    user = tls_dovecot.new_user()
    forged = make_access_token(user, b"not the server's key".ljust(32, b"!"))
    mailbox = tls_mailbox(Sec.TLS, username=user, auth=Auth.XOAUTH2, password=forged)
    tls_dovecot.append(user, "INBOX", [make_message()])

    first = sync_mailbox(mailbox.pk, enqueue=False)

    assert first.status == "auth_failed"
    mailbox.refresh_from_db()
    assert mailbox.consecutive_auth_failures == 1
    assert "authentication failed" in mailbox.last_error.lower()
    assert forged not in mailbox.last_error and forged not in first.error
    assert mailbox.paused_reason == ""

    assert sync_mailbox(mailbox.pk, enqueue=False).status == "auth_failed"
    mailbox.refresh_from_db()
    assert mailbox.consecutive_auth_failures == 2
    assert "failed logins" in mailbox.paused_reason
    assert AuditEvent.objects.filter(action="mailbox.paused", object_id=str(mailbox.pk)).exists()
    assert sync_mailbox(mailbox.pk, enqueue=False).status == "paused"
    assert _stored(mailbox) == 0

    # A new token (the owner's job: Mailwarden does not refresh tokens), then Resume.
    set_secret(mailbox, tls_dovecot.access_token(user))
    mailbox.save()
    assert resume_mailbox(mailbox, actor=mailbox.owner)
    assert sync_mailbox(mailbox.pk, enqueue=False).status == "ok"
    assert _stored(mailbox) == 1
    mailbox.refresh_from_db()
    assert (mailbox.consecutive_auth_failures, mailbox.paused_reason) == (0, "")


def test_an_expired_access_token_is_an_auth_failure(tls_dovecot, tls_mailbox, trust_test_ca):
    user = tls_dovecot.new_user()
    expired = tls_dovecot.access_token(user, lifetime=timedelta(minutes=-5))
    mailbox = tls_mailbox(Sec.TLS, username=user, auth=Auth.XOAUTH2, password=expired)

    report = sync_mailbox(mailbox.pk, enqueue=False)

    assert report.status == "auth_failed"
    mailbox.refresh_from_db()
    assert mailbox.consecutive_auth_failures == 1
    assert expired not in mailbox.last_error


def test_a_token_for_another_user_is_refused(tls_dovecot, tls_mailbox, trust_test_ca):
    user = tls_dovecot.new_user()
    mailbox = tls_mailbox(
        Sec.TLS,
        username=user,
        auth=Auth.XOAUTH2,
        password=tls_dovecot.access_token(tls_dovecot.new_user()),
    )

    assert sync_mailbox(mailbox.pk, enqueue=False).status == "auth_failed"
