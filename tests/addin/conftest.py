"""Fixtures of the add-in's tests: an add-in token got through the real device-code flow, a
fixture mail, and (tests/addin/test_panes_browser.py) Chromium driving the panes with a small
stand-in for the Office host object (office_standin.js) in place of Microsoft's office.js."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.db import connections
from rest_framework.test import APIClient

from capture.addin import signin
from governance.audit import Actor
from tests.factories import make_user
from tests.services import require_service

HERE = Path(__file__).parent
STANDIN = HERE / "office_standin.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def addin_token(user) -> str:
    """A token as the pane gets it: start, approve as `user`, poll."""
    started = signin.start_grant(client="tests")
    grant = signin.pending_grant(started.user_code)
    signin.approve_grant(grant, user, approve=True, actor=Actor.of(user))
    return signin.poll_grant(started.device_code).secret


@pytest.fixture
def addin_user(db):
    return make_user(email="seller@ours.example", password="pw-seller-long-enough")


@pytest.fixture
def addin_client(addin_user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {addin_token(addin_user)}")
    return client


def fixture_mail(
    *,
    sender: str = "Ada Buyer <ada@acme-tools.example>",
    to: str = "Seller <seller@ours.example>",
    cc: str = "",
    subject: str = "Order for the spring range",
    body: str = "Hello, please find our order attached.",
    message_id: str = "<order-1@acme-tools.example>",
    attachments: tuple[tuple[str, bytes], ...] = (("order.pdf", b"%PDF-1.4 order"),),
) -> bytes:
    msg = MimeMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id
    msg.set_content(body)
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


@pytest.fixture
def chromium_path() -> str:
    path = shutil.which("chromium")
    require_service(path is not None, "the 'chromium' browser (apt-get install chromium)")
    return path


@pytest.fixture
def browser(chromium_path, monkeypatch):
    """A headless Chromium (the distribution's) driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        require_service(False, "the playwright package")
    # The tests read the database between browser steps, inside Playwright's event loop thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
            # Queries made while Playwright's loop runs get their own connection (asgiref's
            # Local follows the loop's context): close it here, or it outlives the test
            # database.
            connections.close_all()


def open_pane(browser, url: str, *, fixture: dict, token: str | None = None):
    """A page showing one pane: office.js is answered by the stand-in, which serves `fixture`."""
    import json

    context = browser.new_context()
    context.route(
        "https://appsforoffice.microsoft.com/**",
        lambda route: route.fulfill(
            status=200, content_type="text/javascript", body=STANDIN.read_text()
        ),
    )
    script = f"window.__MW_FIXTURE__ = {json.dumps(fixture)};"
    if token:
        script += f"localStorage.setItem('mailwarden.addin.token', {json.dumps(token)});"
    context.add_init_script(script)
    page = context.new_page()
    page.goto(url)
    return page
