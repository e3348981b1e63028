"""The public tracking endpoints: `GET /t/o/<token>` (a 1x1 GIF, records an open) and
`GET /t/c/<token>` (a redirect to the URL signed into the token, records a click).

The hot path: the token is checked by CPU alone (capture/tracking/tokens.py), the machine signs
by string and address tests, and the event goes to the process's buffer, whose thread writes it
(one multi-row INSERT ... SELECT re-checking consent per event) within ~200 ms: the request
itself makes no database round trip. No session, no user, no template, no CSRF work
(csrf_exempt; the session and auth middlewares are lazy and never touched). A tampered,
truncated or expired token answers 404 and records nothing. A failure to record (database down,
anything else) is logged and the answer is the same as after a success: these endpoints never
answer 500. HEAD answers like GET but records nothing (link scanners and previewers probe with
it).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from capture.tracking import machine, tokens
from capture.tracking.buffer import flush_seconds
from capture.tracking.service import EVENTS, make_event, record_tracking_event

log = logging.getLogger(__name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = "no-store, no-cache, must-revalidate, private, max-age=0"
ALLOWED = ("GET", "HEAD")
_LOG_EVERY_SECONDS = 60.0
_last_failure_log = [0.0]


def _no_cache(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = NO_STORE
    response["Referrer-Policy"] = "no-referrer"
    return response


def _not_found() -> HttpResponse:
    return _no_cache(HttpResponse(b"", status=404, content_type="text/plain"))


def _not_allowed() -> HttpResponse:
    response = HttpResponse(b"", status=405, content_type="text/plain")
    response["Allow"] = ", ".join(ALLOWED)
    return response


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or, when it is a trusted proxy (MAILWARDEN_TRACKING_TRUSTED_PROXIES), the
    nearest X-Forwarded-For address that is not one."""
    remote = request.META.get("REMOTE_ADDR") or ""
    proxies = getattr(settings, "MAILWARDEN_TRACKING_TRUSTED_PROXIES", ())
    if not proxies or not _in(remote, proxies):
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not _in(address, proxies):
            return address
    return remote


def _in(address: str, cidrs) -> bool:
    try:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs)
    except ValueError:
        return False


def _record(request: HttpRequest, claims: tokens.Claims, now: float) -> None:
    """Hand the event to the process's buffer (capture/tracking/buffer.py; its thread writes
    it within ~200 ms), or write it now when MAILWARDEN_TRACKING_FLUSH_SECONDS is 0. Never
    raises (the answer does not depend on it)."""
    try:
        agent = request.META.get("HTTP_USER_AGENT", "")
        reason = machine.machine_reason(agent, client_ip(request), now - claims.issued)
        when = datetime.fromtimestamp(now, UTC)
        if flush_seconds() > 0:
            EVENTS.add(make_event(claims, user_agent=agent, machine_reason=reason, now=when))
        else:
            record_tracking_event(claims, user_agent=agent, machine_reason=reason, now=when)
    except Exception:
        if now - _last_failure_log[0] >= _LOG_EVERY_SECONDS:  # at most once a minute
            _last_failure_log[0] = now
            log.exception("tracking: an event could not be recorded (answered anyway)")


@csrf_exempt
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ALLOWED:
        return _not_allowed()
    now = time.time()
    claims = tokens.read_token(token, tokens.OPEN, now)
    if claims is None:
        return _not_found()
    if request.method == "GET":
        _record(request, claims, now)
    return _no_cache(HttpResponse(PIXEL, content_type="image/gif"))


@csrf_exempt
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ALLOWED:
        return _not_allowed()
    now = time.time()
    claims = tokens.read_token(token, tokens.CLICK, now)
    if claims is None or not claims.url.lower().startswith(("https://", "http://")):
        return _not_found()
    if request.method == "GET":
        _record(request, claims, now)
    response = HttpResponse(b"", status=302)
    response["Location"] = claims.url
    return _no_cache(response)
