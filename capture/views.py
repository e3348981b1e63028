"""Plain Django pages for signed-in users (the admin is the operators' UI)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from capture.addresses import get_or_create_capture_address, rotate_capture_address
from capture.models import CaptureAddress
from governance.audit import client_address


@login_required(login_url="/admin/login/")
@require_http_methods(["GET", "POST"])
def me(request: HttpRequest) -> HttpResponse:
    """The user's settings: their capture addresses (with rotate) and their own addresses."""
    user = request.user
    if request.method == "POST":
        if request.POST.get("action") == "rotate":
            addr = get_object_or_404(
                CaptureAddress, pk=request.POST.get("id"), user=user, active=True
            )
            rotate_capture_address(addr, user, channel="web", address=client_address(request))
            messages.success(
                request, "Your capture address was rotated; the old one no longer works."
            )
        return redirect("me")
    get_or_create_capture_address(user, actor=user, channel="web", address=client_address(request))
    context = {
        "capture_addresses": CaptureAddress.objects.filter(user=user, active=True).order_by(
            "kind", "id"
        ),
        "own_addresses": sorted(user.own_addresses()),
        "login_email": user.email,
        "aliases": user.addresses.order_by("address"),
    }
    return render(request, "capture/me.html", context)
