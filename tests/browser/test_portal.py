"""The admin portal in a real browser: TOTP login, the dashboard, API docs offline, audit CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.portal.dashboard import refresh_snapshot
from governance.audit import record_event, seal_pending_events
from governance.models import AuditEvent
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


@pytest.fixture
def staff(db, settings):
    settings.MAILWARDEN_ADMIN_2FA = True
    user = make_user(
        username="boss", password=PASSWORD, is_staff=True, is_superuser=True, role="admin"
    )
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user, device


def token(device: TOTPDevice) -> str:
    device.refresh_from_db()
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def log_in(watched, device) -> None:
    page = watched.page
    page.goto(f"{watched.origin}/admin/login/?next=/admin/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", token(device))
    page.click("input[type=submit][value='Log in']")
    page.wait_for_selector("#dashboard")


def test_totp_login_then_the_dashboard_loads_nothing_from_elsewhere(watched, staff, screenshot_dir):
    from django.core.management import call_command

    call_command(
        "seed_demo", organizations=40, messages=160, stdout=io.StringIO(), stderr=io.StringIO()
    )
    refresh_snapshot()
    _, device = staff
    page = watched.page

    page.goto(f"{watched.origin}/admin/")
    assert "/admin/login/" in page.url  # no session, no dashboard
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit][value='Log in']")
    assert page.locator(".errornote").count() > 0  # the password alone is not enough
    log_in(watched, device)

    assert page.title() == "Dashboard | Mailwarden"
    assert page.locator("#site-name").inner_text().strip() == "Mailwarden"
    for panel in ("captured", "linking", "review", "consent", "purge", "holds", "tracking"):
        assert page.locator(f"#panel-{panel}").is_visible(), panel
    assert page.locator("#panel-captured svg").count() == 1
    page.screenshot(path=str(screenshot_dir / "dashboard.png"), full_page=True)
    assert watched.foreign_requests() == []

    # a figure leads to the list behind it
    page.locator("#panel-review td.figure a").first.click()
    page.wait_for_selector("#changelist")
    assert "status__exact=open" in page.url
    assert watched.foreign_requests() == []


@pytest.mark.parametrize(
    "path,ready",
    [("/api/docs/", ".swagger-ui .opblock"), ("/api/redoc/", "[role=navigation], .menu-content")],
)
def test_api_docs_render_offline(watched, staff, path, ready):
    _, device = staff
    log_in(watched, device)
    watched.page.goto(f"{watched.origin}{path}")
    watched.page.wait_for_selector(ready, timeout=30_000)
    assert watched.foreign_requests() == [], watched.failures
    # only Redoc's hard-coded logo tries to leave, and the page's policy stops it
    assert set(watched.blocked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


def test_export_the_audit_log_as_csv(watched, staff, screenshot_dir):
    user, device = staff
    record_event(
        "crm.contact.updated", actor=user, object_type="crm.contact", object_id=7, channel="admin"
    )
    record_event("policy.changed", actor='=HYPERLINK("http://evil")', channel="api")
    seal_pending_events()
    log_in(watched, device)
    page = watched.page
    page.goto(f"{watched.origin}/admin/governance/auditevent/")
    page.wait_for_selector("#result_list")
    page.screenshot(path=str(screenshot_dir / "audit.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#audit-export-csv")
    download = info.value
    text = download.path().read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    actors = {r["actor_label"] for r in rows}
    assert "boss" in actors
    assert '\'=HYPERLINK("http://evil")' in actors  # defused for spreadsheets
    assert AuditEvent.objects.filter(action="audit.exported", actor_user=user).exists()

    page.click("#audit-verify")
    page.click("#verify-now")
    assert "The chain is intact" in page.locator("#chain-result").inner_text()
    assert watched.foreign_requests() == []
