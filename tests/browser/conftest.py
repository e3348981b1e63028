"""Browser tests: Playwright drives the distribution's Chromium (no browser download) against
pytest-django's live server. Without Chromium or the playwright package they skip with a
reason locally and fail under CI=true (tests/services.py).

Screenshots go to a temporary folder, or to docs/screenshots/ with
MAILWARDEN_SCREENSHOTS=docs/screenshots (how the committed ones were made: docs/admin.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.services import require_service

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_SCHEMES = ("data:", "blob:", "about:")


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


# Module scope, not session: Playwright's sync API refuses to start while another instance's
# event loop runs in this thread, and other test modules (tests/crm) start their own.
@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    require_service(path is not None, "the 'chromium' browser (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        require_service(False, "the playwright package (pip install -e '.[dev]')")
    # Playwright's sync API keeps an event loop in this thread; the tests still use the ORM
    # between browser steps (the live server runs in its own thread).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class WatchedPage:
    """A page and every request it made (URL), to prove nothing left the origin.

    A request the page's Content-Security-Policy stopped in the browser (Redoc's hard-coded
    logo URL, config/views.py) never reaches the network: it is kept apart in `blocked`."""

    def __init__(self, page, origin: str):
        self.page = page
        self.origin = origin
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.failures: list[tuple[str, str | None]] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        self.failures.append((request.url, request.failure))
        # Chromium reports "csp" (older builds: "net::ERR_BLOCKED_BY_CSP")
        if (request.failure or "").lower() in ("csp", "net::err_blocked_by_csp"):
            self.blocked.append(request.url)

    def foreign_requests(self) -> list[str]:
        self.page.wait_for_load_state("networkidle")
        return [
            url
            for url in self.requests
            if not url.startswith(self.origin + "/")
            and not url.startswith(LOCAL_SCHEMES)
            and url not in self.blocked
        ]


@pytest.fixture
def watched(browser, live_server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    try:
        yield WatchedPage(context.new_page(), live_server.url)
    finally:
        context.close()


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    configured = os.environ.get("MAILWARDEN_SCREENSHOTS")
    target = Path(configured) if configured else tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target
