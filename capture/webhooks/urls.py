"""`/inbound/<provider>/`: one endpoint per ESP anymail supports for inbound mail.

Mailgun sends the raw MIME (`body-mime`) only when the URL contains "mime": point its route at
`/inbound/mailgun/mime/` (`/inbound/mailgun/` also works, with anymail's parsed fields).
"""

from __future__ import annotations

from django.urls import path

from capture.webhooks.views import PROVIDERS, inbound_view

urlpatterns = []
for _provider in PROVIDERS:
    _view = inbound_view(_provider)
    urlpatterns.append(path(f"{_provider.slug}/", _view, name=f"inbound-{_provider.slug}"))
    if _provider.slug == "mailgun":
        urlpatterns.append(path("mailgun/mime/", _view, name="inbound-mailgun-mime"))
