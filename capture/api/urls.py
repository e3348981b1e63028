from __future__ import annotations

from django.urls import path

from capture.api import (
    addresses,
    captures,
    categories,
    dsr,
    emails,
    links,
    mailboxes,
    meetings,
    retention,
    threads,
    timeline,
    tracking,
)
from core.api import ApiRouter

router = ApiRouter(trailing_slash=True)
extra_urls: list = []
for module in (
    captures,
    emails,
    addresses,
    mailboxes,
    categories,
    timeline,
    meetings,
    links,
    threads,
    dsr,
    tracking,
    retention,
):
    module.register(router)
    extra_urls += getattr(module, "urlpatterns", [])

urlpatterns = [
    *router.urls,
    *extra_urls,
    path(
        "emails/<dbid:pk>/categories/",
        categories.EmailCategoriesView.as_view(),
        name="email-categories",
    ),
]
__all__ = ["path", "urlpatterns"]
