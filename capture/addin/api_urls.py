"""`/api/v1/addin/...` (capture/addin/api.py)."""

from __future__ import annotations

from django.urls import path

from capture.addin import api

urlpatterns = [
    path("lookup/", api.LookupView.as_view(), name="addin-lookup"),
    path("contacts/", api.ContactCreateView.as_view(), name="addin-contacts"),
    path("appointments/", api.AppointmentView.as_view(), name="addin-appointments"),
    path("capture-address/", api.CaptureAddressView.as_view(), name="addin-capture-address"),
    path("sign-out/", api.SignOutView.as_view(), name="addin-sign-out"),
]
