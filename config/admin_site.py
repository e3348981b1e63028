"""The "Mailwarden" admin site: the dashboard on its index, two-factor login for staff.

Installed as the default site (config/apps.py), so `admin.site` is this site everywhere.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST


@lru_cache(maxsize=1)
def _otp_login_form():
    from django_otp import devices_for_user
    from django_otp.admin import OTPAdminAuthenticationForm

    class OTPLoginForm(OTPAdminAuthenticationForm):
        """Username, password and the code of the user's authenticator in one step: with one
        confirmed device (the usual case) it need not be chosen from a list first."""

        def _chosen_device(self, user):
            device = super()._chosen_device(user)
            if device is None:
                devices = list(devices_for_user(user, confirmed=True))
                if len(devices) == 1:
                    device = devices[0]
            return device

    return OTPLoginForm


class MailwardenAdminSite(AdminSite):
    site_header = "Mailwarden"
    site_title = "Mailwarden"
    index_title = _("Dashboard")
    index_template = "admin/mailwarden_index.html"

    # --- two-factor login (django-otp, TOTP), docs/admin.md "Staff accounts" --------------
    @staticmethod
    def two_factor_required() -> bool:
        return bool(getattr(settings, "MAILWARDEN_ADMIN_2FA", False))

    @property
    def login_form(self):  # read by AdminSite.login
        if self.two_factor_required():
            return _otp_login_form()
        return AdminAuthenticationForm

    @property
    def login_template(self):
        return "otp/admin111/login.html" if self.two_factor_required() else None

    def has_permission(self, request) -> bool:
        if not super().has_permission(request):
            return False
        if self.two_factor_required():
            is_verified = getattr(request.user, "is_verified", None)
            return bool(is_verified and is_verified())
        return True

    # --- the dashboard ------------------------------------------------------------------
    def index(self, request, extra_context=None):
        from config.portal.dashboard import dashboard_context

        context = {**(extra_context or {}), **dashboard_context(request)}
        return super().index(request, extra_context=context)

    def get_urls(self):
        return [
            path(
                "dashboard/refresh/",
                self.admin_view(self.refresh_dashboard_view),
                name="portal_dashboard_refresh",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    @require_POST
    def refresh_dashboard_view(request):
        """Queue a recomputation of the figures (in-process without a broker)."""
        from core.dispatch import send

        send("portal.refresh_dashboard")
        return HttpResponseRedirect(reverse("admin:index"))
