from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from capture.api import addresses, captures, emails, links, mailboxes

router = DefaultRouter(trailing_slash=True)
extra_urls: list = []
for module in (captures, emails, addresses, mailboxes, links):
    module.register(router)
    extra_urls += getattr(module, "urlpatterns", [])

urlpatterns = [*router.urls, *extra_urls]
__all__ = ["path", "urlpatterns"]
