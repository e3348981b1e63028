from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from capture import views as capture_views
from capture.tracking import views as tracking_views
from config.i18n import set_language
from config.views import healthz, self_hosted_only

urlpatterns = [
    # Open and click tracking (capture/tracking/views.py): public, cheap, signed tokens; first,
    # so a pixel is resolved without walking the other routes.
    path("t/o/<str:token>", tracking_views.open_pixel, name="tracking-open"),
    path("t/c/<str:token>", tracking_views.click_redirect, name="tracking-click"),
    path("admin/", admin.site.urls),
    # the header's language switcher: Django's set_language, also saved to the user's profile
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files (settings.py); Redoc
    # under a policy that keeps every request on this origin (config/views.py).
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/",
        self_hosted_only(SpectacularRedocView.as_view(url_name="schema")),
        name="api-redoc",
    ),
    path("api/v1/", include("crm.api.urls")),
    path("api/v1/", include("capture.api.urls")),
    path("api/v1/", include("governance.api.urls")),
    path("api/v1/addin/", include("capture.addin.api_urls")),
    path("inbound/", include("capture.webhooks.urls")),
    path("addin/", include("capture.addin.urls")),
    path("me/", capture_views.me, name="me"),
    path("healthz", healthz, name="healthz"),
]
# A URL under /api/ that matches no route (e.g. /api/v1/contacts/abc/) answers JSON.
handler404 = "core.api.api_page_not_found"
