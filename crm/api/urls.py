from __future__ import annotations

from core.api import ApiRouter
from crm.api import schema, views  # noqa: F401  (schema registers the auth extension)

router = ApiRouter(trailing_slash=True)
router.include_root_view = False  # /api/v1/ is shared by several apps' routers
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("items", views.ItemViewSet, basename="item")

urlpatterns = router.urls
