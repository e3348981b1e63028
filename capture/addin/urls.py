"""`/addin/...`: the manifest, the panes and the sign-in pages (capture/addin/views.py)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from capture.addin import views

urlpatterns = [
    path("manifest.xml", views.manifest, name="addin-manifest"),
    path("read/", views.read_pane, name="addin-read"),
    path("compose/", views.compose_pane, name="addin-compose"),
    path("assets/<str:name>", views.asset, name="addin-asset"),
    path("device/start/", views.device_start, name="addin-device-start"),
    path("device/token/", views.device_token, name="addin-device-token"),
    path("activate/", views.activate, name="addin-activate"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="addin/login.html"),
        name="addin-login",
    ),
]
