from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from capture.api import addresses, captures, categories, emails, mailboxes, timeline

router = DefaultRouter(trailing_slash=True)
extra_urls: list = []
for module in (captures, emails, addresses, mailboxes, categories, timeline):
    module.register(router)
    extra_urls += getattr(module, "urlpatterns", [])

urlpatterns = [
    *router.urls,
    *extra_urls,
    path(
        "emails/<int:pk>/categories/",
        categories.EmailCategoriesView.as_view(),
        name="email-categories",
    ),
]
__all__ = ["path", "urlpatterns"]
