"""The add-in's pages: its manifest (with this server's URL), the read and compose panes, their
static files, and the device-code sign-in (`/addin/device/...` for the pane, `/addin/activate/`
for the person approving the code). docs/addin.md describes installing and signing in."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from capture.addin import signin
from governance.audit import Actor, client_address

ASSETS = Path(__file__).parent / "assets"
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# The add-in's id in the manifest: stable per server URL, so each installation is its own add-in.
ADDIN_NAMESPACE = uuid.UUID("6f1b5a8e-3c1d-4a57-9a0e-6d3f1e2b7c44")
ADDIN_VERSION = "1.0.0.0"
# The one script from another origin, required by Office: Outlook loads it into every pane.
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"


def public_base_url(request: HttpRequest) -> str:
    """This server's URL, https://mail.example.com (no slash at the end): the
    MAILWARDEN_PUBLIC_URL setting or environment variable, else the request's own."""
    configured = getattr(settings, "MAILWARDEN_PUBLIC_URL", "") or os.environ.get(
        "MAILWARDEN_PUBLIC_URL", ""
    )
    return (configured or request.build_absolute_uri("/")).rstrip("/")


@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    base = public_base_url(request)
    context = {
        "base": base,
        "addin_id": uuid.uuid5(ADDIN_NAMESPACE, base),
        "version": ADDIN_VERSION,
        "domain": base.split("://", 1)[-1].split("/", 1)[0],
    }
    response = render(request, "addin/manifest.xml", context, content_type="text/xml")
    response["Content-Disposition"] = 'inline; filename="mailwarden-outlook-manifest.xml"'
    return response


def _pane(request: HttpRequest, template: str) -> HttpResponse:
    return render(
        request,
        template,
        {"base": public_base_url(request), "office_js": OFFICE_JS, "version": ADDIN_VERSION},
    )


@require_GET
@xframe_options_exempt  # Outlook on the web shows the pane in a frame
def read_pane(request: HttpRequest) -> HttpResponse:
    return _pane(request, "addin/read.html")


@require_GET
@xframe_options_exempt
def compose_pane(request: HttpRequest) -> HttpResponse:
    return _pane(request, "addin/compose.html")


@require_GET
def asset(request: HttpRequest, name: str) -> FileResponse:
    """One of the pane's own files (capture/addin/assets/), never anything else."""
    path = ASSETS / name
    kind = ASSET_TYPES.get(path.suffix)
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        raise Http404("No such add-in file.")
    response = FileResponse(path.open("rb"), content_type=kind)
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- device-code sign-in ----------------------------------------------------------------------


START_LIMIT = 20  # sign-ins one client address may start per window
START_WINDOW = 600  # seconds


def _too_many_starts(request: HttpRequest) -> bool:
    """A bound on anonymous grant creation per client address (the cache's own window)."""
    key = f"addin:device-start:{client_address(request)}"
    cache.add(key, 0, START_WINDOW)
    try:
        return cache.incr(key) > START_LIMIT
    except ValueError:  # expired between add and incr
        return False


@csrf_exempt  # no cookie is used: the pane proves itself with the device code
@require_POST
def device_start(request: HttpRequest) -> JsonResponse:
    if _too_many_starts(request):
        return JsonResponse(
            {"error": "slow_down", "error_description": "Too many sign-ins started; wait."},
            status=429,
        )
    started = signin.start_grant(client=request.headers.get("User-Agent", ""))
    verify = f"{public_base_url(request)}/addin/activate/"
    return JsonResponse(
        {
            "device_code": started.device_code,
            "user_code": started.user_code,
            "verification_uri": verify,
            "verification_uri_complete": f"{verify}?code={started.user_code}",
            "expires_in": started.expires_in,
            "interval": started.interval,
        }
    )


@csrf_exempt
@require_POST
def device_token(request: HttpRequest) -> JsonResponse:
    """The pane's poll: 200 with the token, or 400 with an RFC 8628 error code."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    code = body.get("device_code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code or len(code) > 200:
        return JsonResponse(
            {"error": "invalid_request", "error_description": 'Send {"device_code": ...}.'},
            status=400,
        )
    try:
        issued = signin.poll_grant(code)
    except signin.GrantError as e:
        return JsonResponse({"error": e.code, "error_description": e.detail}, status=400)
    token = issued.token
    return JsonResponse(
        {
            "access_token": issued.secret,
            "token_type": "Bearer",
            "scope": " ".join(token.scopes),
            "expires_in": int((token.expires_at - token.created).total_seconds()),
            "user": {"id": token.user.pk, "username": token.user.get_username()},
        }
    )


class ActivateForm(forms.Form):
    code = forms.CharField(max_length=20, label="Code shown in Outlook")


LOGIN_URL = "/addin/login/"


@login_required(login_url=LOGIN_URL)
@require_http_methods(["GET", "POST"])
def activate(request: HttpRequest) -> HttpResponse:
    """Enter the code the pane shows, see what the add-in will be allowed to do, approve."""
    context: dict = {"scopes": signin.ADDIN_SCOPES, "lifetime_days": signin.TOKEN_LIFETIME.days}
    if request.method == "GET":
        context["form"] = ActivateForm(initial={"code": request.GET.get("code", "")[:20]})
        return render(request, "addin/activate.html", context)
    form = ActivateForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render(request, "addin/activate.html", context, status=400)
    grant = signin.pending_grant(form.cleaned_data["code"])
    if grant is None:
        form.add_error("code", "No pending sign-in with this code (it may have expired).")
        return render(request, "addin/activate.html", context, status=400)
    approve = request.POST.get("decision") == "approve"
    try:
        signin.approve_grant(
            grant,
            request.user,
            approve=approve,
            actor=Actor.of(request.user),
            address=client_address(request),
        )
    except signin.GrantError as e:
        form.add_error("code", e.detail)
        return render(request, "addin/activate.html", context, status=400)
    context["done"] = "approved" if approve else "denied"
    return render(request, "addin/activate.html", context)
