"""Operations in a real browser: resolve a review item, read hostile mail in the safe viewer
(nothing runs, nothing is fetched from elsewhere, images only through our proxy), and find
that view in the exported audit log."""

from __future__ import annotations

import csv
import io
import struct
import threading
import zlib
from email.message import EmailMessage as MimeMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from capture.models import EmailMessage, LinkRule, ReviewItem, ThreadLink
from governance.audit import seal_pending_events
from governance.models import AuditEvent
from tests.browser import test_portal
from tests.capture.linking.helpers import TOM, captured, item, rule
from tests.factories import make_contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
staff = test_portal.staff  # the fixture: a superuser with a confirmed TOTP device
log_in = test_portal.log_in


def _png(width: int = 1, height: int = 1) -> bytes:
    """A small opaque PNG, built here (no binary fixture)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x2a\x7f\xd4" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PIXEL = _png()


class RemoteSite:
    """A stand-in for the sender's server on another origin (loopback, another port): it
    serves an image for every .png path and records each hit with its User-Agent."""

    def __init__(self) -> None:
        hits: list[tuple[str, str]] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append((self.path, self.headers.get("User-Agent", "")))
                png = self.path.split("?")[0].endswith(".png")
                body = PIXEL if png else b"body{background:red}"
                self.send_response(200)
                self.send_header("Content-Type", "image/png" if png else "text/css")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote(settings):
    site = RemoteSite()
    # The proxy refuses loopback addresses; this test's "sender" lives on loopback.
    settings.MAILWARDEN_IMAGE_PROXY_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    try:
        yield site
    finally:
        site.close()


def hostile_html(remote: str) -> str:
    return f"""<html><head>
<style>@import url({remote}/import.css); body {{ background: url({remote}/style-bg.png) }}</style>
<link rel="stylesheet" href="{remote}/linked.css">
<script>alert("PAYLOAD script"); console.log("PAYLOAD script");</script>
</head><body onload="alert('PAYLOAD body onload')">
<h2 title="greeting">Quarterly numbers</h2>
<p style="background-image: url({remote}/inline-bg.png); color: #333">Hi, the numbers are attached.</p>
<p style="background: url(https://remote.example/tracker.png)">CSS to another origin.</p>
<img src="nothing.png" onerror="alert('PAYLOAD onerror'); console.log('PAYLOAD onerror')">
<svg onload="alert('PAYLOAD svg')"><circle r="4"></circle></svg>
<a id="js-link" href="javascript:alert('PAYLOAD javascript url')">Open the report</a>
<a href="javascript&colon;alert('PAYLOAD encoded')">Another link</a>
<form action="{remote}/collect"><input name="q" autofocus onfocus="alert('PAYLOAD focus')"></form>
<iframe src="{remote}/frame.html"></iframe>
<object data="{remote}/object.swf"></object>
<video poster="{remote}/poster.png"></video>
<table background="{remote}/table-bg.png"><tr><td>cell</td></tr></table>
<img title="remote-image" alt="remote logo" src="{remote}/logo.png" width="20" height="20">
</body></html>"""


def capture_hostile(user, remote: str) -> EmailMessage:
    from capture.intake import RawSpec, store_raw_messages
    from capture.pipeline import process_raw_messages

    mime = MimeMessage()
    mime["From"] = "Mallory <mallory@evil.example>"
    mime["To"] = "boss@mailwarden-demo.com"
    mime["Subject"] = "Quarterly numbers"
    mime["Message-ID"] = "<hostile-1@evil.example>"
    mime["Date"] = "Mon, 1 Dec 2026 10:00:00 +0000"
    mime.set_content("Hi, the numbers are attached.")
    mime.add_alternative(hostile_html(remote), subtype="html")
    spec = RawSpec(data=mime.as_bytes(), channel="api", user_id=user.pk)
    (raw,) = store_raw_messages([spec], enqueue=False, fsync=False)
    process_raw_messages([raw.pk])
    raw.refresh_from_db()
    assert raw.email_id, (raw.status, raw.reason_code, raw.reason_detail)
    return EmailMessage.objects.get(pk=raw.email_id)


class Observed:
    """Everything the page and its frames did: dialogs (dismissed), console lines, requests."""

    def __init__(self, page) -> None:
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.requests: list[str] = []
        self.statuses: dict[str, int] = {}
        page.on("dialog", self._dialog)
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        # page-level events cover the sandboxed iframe; popups would be new pages
        page.context.on("request", lambda request: self.requests.append(request.url))
        page.context.on("response", lambda r: self.statuses.__setitem__(r.url, r.status))
        page.context.on("page", lambda popup: self.requests.append(f"popup: {popup.url}"))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def test_hostile_mail_in_the_viewer_runs_nothing_and_fetches_nothing_from_elsewhere(
    watched, staff, remote, screenshot_dir
):
    user, device = staff
    email = capture_hostile(user, remote.origin)
    observed = Observed(watched.page)
    log_in(watched, device)
    page = watched.page

    page.goto(f"{watched.origin}/admin/capture/emailmessage/{email.pk}/view/")
    frame_element = page.wait_for_selector("iframe#mw-body")
    frame = frame_element.content_frame()
    frame.wait_for_selector("h2[title=greeting]")
    page.wait_for_load_state("networkidle")
    assert "allow-scripts" not in (frame_element.get_attribute("sandbox") or "")
    assert frame.locator("text=Hi, the numbers are attached.").count() == 1

    # what reached the frame is sanitised: no script, no handler, no javascript: URL
    html = frame.content()
    for banned in ("<script", "onload", "onerror", "onfocus", "javascript", "@import", "url("):
        assert banned not in html.lower(), banned
    # the remote image keeps no source until the viewer asks for images
    assert frame.locator("img[title=remote-image]:not([src])").count() == 1
    # clicking the former javascript: link runs nothing either
    frame.locator("text=Open the report").click()
    page.wait_for_load_state("networkidle")

    assert observed.dialogs == []
    assert [line for line in observed.console if "PAYLOAD" in line] == []
    assert [url for url in observed.requests if not url.startswith(watched.origin + "/")] == []
    assert watched.foreign_requests() == [] and watched.blocked == []
    assert remote.hits == []  # the sender's server heard nothing
    assert AuditEvent.objects.filter(
        action="message.viewed", object_id=str(email.pk), detail__images=False
    ).exists()

    # "Show images": the image arrives, through our proxy only
    page.click("a#mw-show-images")
    frame = page.frame(name="mw-body")
    image = frame.wait_for_selector("img[title=remote-image][src]")
    page.wait_for_load_state("networkidle")
    proxy = f"{watched.origin}/admin/capture/emailmessage/{email.pk}/image/?src="
    assert image.get_attribute("src").startswith(proxy.removeprefix(watched.origin))
    proxied = [url for url in observed.requests if url.startswith(proxy)]
    assert len(proxied) == 1 and observed.statuses.get(proxied[0]) == 200, observed.statuses
    assert frame.evaluate("img => img.complete && img.naturalWidth", image) == 1
    assert [url for url in observed.requests if not url.startswith(watched.origin + "/")] == []
    # the one hit on the sender's server is our proxy's, for the image, and nothing else
    assert remote.hits == [("/logo.png", "Mailwarden image proxy")]
    assert observed.dialogs == []
    assert [line for line in observed.console if "PAYLOAD" in line] == []
    assert AuditEvent.objects.filter(
        action="message.viewed", object_id=str(email.pk), detail__images=True
    ).exists()
    page.screenshot(path=str(screenshot_dir / "viewer.png"), full_page=True)

    # the views are in the exported audit log
    seal_pending_events()
    page.goto(f"{watched.origin}/admin/governance/auditevent/?action=message.viewed")
    page.wait_for_selector("#result_list")
    with page.expect_download() as info:
        page.click("#audit-export-csv")
    rows = list(csv.DictReader(io.StringIO(info.value.path().read_text(encoding="utf-8"))))
    viewed = [r for r in rows if r["action"] == "message.viewed"]
    assert len(viewed) >= 2 and {r["object_id"] for r in viewed} == {str(email.pk)}
    assert observed.dialogs == []
    assert [url for url in observed.requests if not url.startswith(watched.origin + "/")] == []


def test_resolve_a_review_item_in_the_admin(watched, staff):
    user, device = staff
    tom = make_contact(emails=(TOM,))
    item(tom, title="Pumps")
    item(tom, title="Valves")
    rule(LinkRule.Strategy.SINGLE_OPEN)
    email = captured(user=user, subject="Which deal is this?")
    review = ReviewItem.objects.get(thread_id=email.thread_id)
    top = review.candidates[0]

    log_in(watched, device)
    page = watched.page
    page.goto(f"{watched.origin}/admin/capture/reviewitem/?status__exact=open")
    page.wait_for_selector("#result_list")
    page.check(f"input[name=_selected_action][value='{review.pk}']")
    page.select_option("select[name=action]", "resolve_top")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "1 review item(s) resolved." in page.locator(".messagelist").inner_text()

    review.refresh_from_db()
    assert (review.status, review.resolved_by) == (ReviewItem.Status.RESOLVED, user)
    assert ThreadLink.objects.filter(thread_id=email.thread_id, item_id=top).exists()
    assert AuditEvent.objects.filter(action="review.resolved", actor_user=user).count() == 1
    # it left the open queue
    assert page.locator(f"input[name=_selected_action][value='{review.pk}']").count() == 0
    assert watched.foreign_requests() == []
