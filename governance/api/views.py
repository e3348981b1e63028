"""Governance API: the audit log (read-only), never-log rules, organisation settings.

Every endpoint needs the `governance:admin` scope (tokens) or a compliance/admin user (session).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import FilterSet
from crm.auth import ScopePermission, request_scopes
from crm.models import ApiToken
from governance import never_log
from governance.api.me import RemovalCountsSerializer
from governance.api.serializers import (
    AuditEventSerializer,
    NeverLogRuleSerializer,
    OrgSettingsSerializer,
)
from governance.audit import actor_from_request, client_address, record_event
from governance.models import AuditEvent, NeverLogRule, OrgSettings

GOVERNANCE_ADMIN = ApiToken.Scope.GOVERNANCE_ADMIN.value


class GovernancePermission(ScopePermission):
    """Tokens need governance:admin; session users must be compliance officers or admins."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request_scopes(request) is None:
            return bool(request.user.is_compliance)
        return True


class GovernanceView:
    permission_classes = [GovernancePermission]
    read_scope = GOVERNANCE_ADMIN
    write_scope = GOVERNANCE_ADMIN


def audit_policy_change(
    request: Request, verb: str, obj: Any, fields: Any = (), object_id: Any = ""
) -> None:
    record_event(
        f"governance.{obj._meta.model_name}.{verb}",
        actor=actor_from_request(request),
        obj=obj,
        object_id=object_id,
        channel="api",
        address=client_address(request),
        detail={"fields": sorted(fields)} if fields else {},
    )


class AuditEventFilter(FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor_type", "actor_user", "object_type", "object_id", "channel"]


class AuditEventViewSet(GovernanceView, viewsets.ReadOnlyModelViewSet):
    """The append-only audit log, newest first."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    search_fields = ["action", "actor_label", "object_id"]
    queryset = AuditEvent.objects.all()


class NeverLogRuleViewSet(GovernanceView, viewsets.ModelViewSet):
    """Addresses and domains whose mail is never logged (org-wide, or for one user).

    A personal rule is seen by its owner and admins only (a governance:admin token acts as an
    admin); a compliance officer who is not an admin sees org-wide rules and their own."""

    serializer_class = NeverLogRuleSerializer
    filterset_fields = ["kind", "user", "value"]
    search_fields = ["value", "note"]
    queryset = NeverLogRule.objects.all()
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if request_scopes(self.request) is not None:
            return NeverLogRule.objects.all()
        return never_log.visible_never_log_rules(self.request.user)

    def _audit(self) -> dict[str, Any]:
        return {
            "actor": actor_from_request(self.request),
            "channel": "api",
            "client": client_address(self.request),
        }

    @extend_schema(request=None, responses=RemovalCountsSerializer)
    @action(detail=True, methods=["get"], url_path="removal-preview")
    def removal_preview(self, request: Request, pk: Any = None) -> Response:
        """Count the stored mail this rule matches (what `remove-stored` deletes)."""
        with transaction.atomic():
            counts = never_log.preview_never_log_removal(self.get_object(), **self._audit())
        return Response(counts)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"], url_path="remove-stored")
    def remove_stored(self, request: Request, pk: Any = None) -> Response:
        """Delete the stored mail this rule matches, in the background (audited)."""
        never_log.queue_never_log_removal(self.get_object(), **self._audit())
        return Response({"detail": "Removal queued."}, status=status.HTTP_202_ACCEPTED)

    def perform_create(self, serializer) -> None:
        with transaction.atomic():
            obj = serializer.save()
            audit_policy_change(self.request, "created", obj, serializer.validated_data.keys())

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            obj = serializer.save()
            audit_policy_change(self.request, "updated", obj, serializer.validated_data.keys())

    def perform_destroy(self, instance) -> None:
        with transaction.atomic():
            audit_policy_change(self.request, "deleted", instance)
            instance.delete()


class OrgSettingsView(
    GovernanceView, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, generics.GenericAPIView
):
    """The organisation's capture policy (a single record): GET, PUT, PATCH."""

    serializer_class = OrgSettingsSerializer

    def get_object(self) -> OrgSettings:
        obj = OrgSettings.load()
        self.check_object_permissions(self.request, obj)
        return obj

    @extend_schema(summary="Read the organisation settings")
    def get(self, request, *args, **kwargs):
        return self.retrieve(request, *args, **kwargs)

    @extend_schema(summary="Replace the organisation settings")
    def put(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    @extend_schema(summary="Change some organisation settings")
    def patch(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            obj = serializer.save()
            audit_policy_change(self.request, "updated", obj, serializer.validated_data.keys())
