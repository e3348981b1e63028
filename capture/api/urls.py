from __future__ import annotations

from django.urls import path

from capture.api import addresses, captures, emails, mailboxes
from core.api import ApiRouter

router = ApiRouter(trailing_slash=True)
extra_urls: list = []
for module in (captures, emails, addresses, mailboxes):
    module.register(router)
    extra_urls += getattr(module, "urlpatterns", [])

urlpatterns = [*router.urls, *extra_urls]
__all__ = ["path", "urlpatterns"]
