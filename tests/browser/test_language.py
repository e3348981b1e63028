"""Switching the portal's language in a real browser (issue 17 items 9 and 10): log in, pick
Polish in the header's switcher, see the dashboard in Polish, and the choice is kept in the
profile (docs/admin.md "Languages")."""

from __future__ import annotations

import pytest

from config.portal.dashboard import refresh_snapshot
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"


@pytest.fixture
def staff(db):
    return make_user(
        username="polyglot", password=PASSWORD, is_staff=True, is_superuser=True, role="admin"
    )


def test_switch_the_language_in_the_header_and_see_the_dashboard_in_polish(
    watched, staff, screenshot_dir
):
    refresh_snapshot()
    page = watched.page
    page.goto(f"{watched.origin}/admin/login/?next=/admin/")
    page.fill("#id_username", "polyglot")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")
    assert page.title() == "Dashboard | Mailwarden"
    assert page.locator("#panel-review h2").inner_text() == "Review backlog"

    page.select_option("#language-select", "pl")
    with page.expect_navigation():
        page.click("#language-submit")
    page.wait_for_selector("#dashboard")
    assert page.title() == "Pulpit | Mailwarden"
    assert page.locator("html").get_attribute("lang") == "pl"
    assert page.locator("#panel-review h2").inner_text() == "Zaległości w przeglądzie"
    assert page.locator("#language-select").input_value() == "pl"
    page.screenshot(path=str(screenshot_dir / "dashboard-pl.png"), full_page=True)

    staff.refresh_from_db()
    assert staff.language == "pl"
    # the profile keeps it: a new session in a browser that asks for English still gets Polish
    context = page.context.browser.new_context(locale="en-US")
    try:
        other = context.new_page()
        other.goto(f"{watched.origin}/admin/login/?next=/admin/")
        assert other.locator("html").get_attribute("lang") == "en"
        other.fill("#id_username", "polyglot")
        other.fill("#id_password", PASSWORD)
        other.click("input[type=submit]")
        other.wait_for_selector("#dashboard")
        assert other.title() == "Pulpit | Mailwarden"
    finally:
        context.close()
    assert watched.foreign_requests() == []
