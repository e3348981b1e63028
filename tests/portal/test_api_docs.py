"""/api/docs/ and /api/redoc/ load Swagger UI and Redoc from our own static files."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["api-docs", "api-redoc"])
def test_docs_pages_reference_only_local_assets(admin_client, name):
    resp = admin_client.get(reverse(name))
    assert resp.status_code == 200
    html = resp.content.decode()
    urls = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html)
    assert urls
    for url in urls:
        assert not url.startswith(("http:", "https:", "//")), url
    assets = [u for u in urls if u.startswith("/static/")]
    assert assets, "the UI comes from drf-spectacular-sidecar's static files"
    for url in assets:
        assert finders.find(url.removeprefix("/static/").split("?")[0]), url
