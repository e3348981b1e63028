from __future__ import annotations

from django.urls import path

from core.api import ApiRouter
from governance.api import compose, consents, me, views

router = ApiRouter(trailing_slash=True)
router.include_root_view = False  # /api/v1/ is shared by several apps' routers
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("never-log-rules", views.NeverLogRuleViewSet, basename="never-log-rule")
router.register("me/addresses", me.MyAddressViewSet, basename="my-address")
router.register("me/never-log", me.MyNeverLogRuleViewSet, basename="my-never-log-rule")
router.register("consents", consents.ConsentRecordViewSet, basename="consent")

urlpatterns = [
    path("org-settings/", views.OrgSettingsView.as_view(), name="org-settings"),
    path("me/settings/", me.MySettingsView.as_view(), name="my-settings"),
    path("compose/check", compose.ComposeCheckView.as_view(), name="compose-check"),
    path(
        "contacts/<dbid:pk>/consent/",
        consents.ContactConsentView.as_view(),
        name="contact-consent",
    ),
    *router.urls,
]
