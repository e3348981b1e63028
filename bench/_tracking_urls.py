"""The project's routes plus the bare view bench/tracking.py compares the open pixel with."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def bare(request):
    return HttpResponse(status=204)


# First, as the /t/ routes are first in config/urls.py: both resolve without a walk.
urlpatterns = [path("bench/204", bare), *project_urlpatterns]
handler404 = "core.api.api_page_not_found"
