"""A real Chromium drives the admin: log in, open contacts, search, see the contact."""

from __future__ import annotations

import shutil

import pytest

from tests.factories import make_contact, make_user
from tests.services import require_service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_admin_login_then_contact_search_shows_the_contact(live_server):
    chromium = shutil.which("chromium")
    require_service(chromium is not None, "the 'chromium' browser (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        require_service(False, "the playwright package")

    # The ORM is used before Playwright starts its event loop in this thread.
    make_user(
        username="boss",
        password="correct-horse-battery",
        is_staff=True,
        is_superuser=True,
        role="admin",
    )
    make_contact(first_name="Hedy", last_name="Lamarr", emails=("hedy@frequency-hopping.com",))
    make_contact(first_name="Grace", last_name="Hopper", emails=("grace@cobol.org",))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "boss")
            page.fill("#id_password", "correct-horse-battery")
            page.click("input[type=submit]")
            page.wait_for_selector("#site-name")
            assert "/admin/login/" not in page.url

            page.goto(f"{live_server.url}/admin/crm/contact/")
            assert page.locator("#result_list").is_visible()
            page.fill("#searchbar", "lamarr")
            page.press("#searchbar", "Enter")
            page.wait_for_url("**/admin/crm/contact/?q=lamarr")
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 1
            text = rows.first.inner_text()
            assert "Hedy Lamarr" in text and "hedy@frequency-hopping.com" in text
            assert "Grace Hopper" not in page.locator("#result_list").inner_text()
        finally:
            browser.close()
