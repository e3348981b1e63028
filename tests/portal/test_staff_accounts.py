"""Staff accounts: two-factor login (django-otp TOTP), lockout after failed logins
(django-axes), sessions that expire. Driven through the real admin login view."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db
LOGIN = "admin:login"


@pytest.fixture
def staff(db):
    return make_user(
        username="staffer", password="right-password-1", is_staff=True, is_superuser=True
    )


def current_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def post_login(client, **data):
    return client.post(
        reverse(LOGIN), {"next": reverse("admin:index"), **data}, REMOTE_ADDR="10.0.0.9"
    )


def test_production_default_enforces_two_factor():
    # settings.py: MAILWARDEN_ADMIN_2FA defaults to `not DEBUG`
    import config.settings as conf

    assert (
        conf.MAILWARDEN_ADMIN_2FA == (not conf.DEBUG)
        or "MAILWARDEN_ADMIN_2FA" in __import__("os").environ
    )


class TestTwoFactor:
    @pytest.fixture(autouse=True)
    def _enforced(self, settings):
        settings.MAILWARDEN_ADMIN_2FA = True

    def test_password_alone_is_refused(self, client, staff):
        TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
        resp = post_login(client, username="staffer", password="right-password-1")
        assert resp.status_code == 200
        assert client.get(reverse("admin:index")).status_code == 302

    def test_a_wrong_token_is_refused(self, client, staff):
        device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
        wrong = f"{(int(current_token(device)) + 1) % 10**6:06d}"
        resp = post_login(client, username="staffer", password="right-password-1", otp_token=wrong)
        assert resp.status_code == 200
        assert client.get(reverse("admin:index")).status_code == 302

    def test_password_and_totp_log_in(self, client, staff):
        device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
        resp = post_login(
            client, username="staffer", password="right-password-1", otp_token=current_token(device)
        )
        assert resp.status_code == 302, resp.context["form"].errors
        assert client.get(reverse("admin:index")).status_code == 200

    def test_a_session_without_verification_cannot_use_the_admin(self, client, staff):
        client.force_login(staff)  # a password-only session (e.g. from /me/)
        resp = client.get(reverse("admin:index"))
        assert resp.status_code == 302 and reverse(LOGIN) in resp["Location"]

    def test_login_page_asks_for_the_token(self, client):
        assert 'name="otp_token"' in client.get(reverse(LOGIN)).content.decode()


def test_without_enforcement_a_password_is_enough(client, staff, settings):
    settings.MAILWARDEN_ADMIN_2FA = False
    assert 'name="otp_token"' not in client.get(reverse(LOGIN)).content.decode()
    assert post_login(client, username="staffer", password="right-password-1").status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_admin_totp_command_creates_a_device_and_prints_its_secret(staff):
    out = io.StringIO()
    call_command("admin_totp", "staffer", stdout=out)
    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed
    text = out.getvalue()
    assert "otpauth://totp/" in text and "secret=" in text
    # running it again keeps the device (and prints the same secret)
    out2 = io.StringIO()
    call_command("admin_totp", "staffer", stdout=out2)
    assert TOTPDevice.objects.filter(user=staff).count() == 1
    assert out2.getvalue() == text


def test_repeated_failed_logins_lock_the_account_out(client, staff, settings):
    settings.MAILWARDEN_ADMIN_2FA = False
    for _ in range(settings.AXES_FAILURE_LIMIT):
        resp = post_login(client, username="staffer", password="wrong")
        assert resp.status_code in (200, 429)
    # now even the right password is refused
    resp = post_login(client, username="staffer", password="right-password-1")
    assert resp.status_code == 429
    assert "Too many failed logins" in resp.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302
    events = list(AuditEvent.objects.filter(action="auth.locked_out"))
    assert events  # the lockout, and each attempt refused while it lasts
    assert {(e.detail["username"], e.address) for e in events} == {("staffer", "10.0.0.9")}


def test_fewer_failures_than_the_limit_do_not_lock(client, staff, settings):
    settings.MAILWARDEN_ADMIN_2FA = False
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_login(client, username="staffer", password="wrong")
    assert post_login(client, username="staffer", password="right-password-1").status_code == 302


def test_session_cookie_ends_with_the_browser_and_the_session_expires(client, staff, settings):
    settings.MAILWARDEN_ADMIN_2FA = False
    resp = post_login(client, username="staffer", password="right-password-1")
    cookie = resp.cookies[settings.SESSION_COOKIE_NAME]
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert not cookie["expires"] and not cookie["max-age"]  # a browser-session cookie
    assert cookie["httponly"]
    session = Session.objects.get(session_key=cookie.value)
    age = (session.expire_date - timezone.now()).total_seconds()
    assert 0 < age <= settings.SESSION_COOKIE_AGE
    assert client.get(reverse("admin:index")).status_code == 200
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("admin:index")).status_code == 302
