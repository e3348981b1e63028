"""CRM API views: thin CRUD over the serializers, every write audited (channel "api")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api import filters
from crm.api.serializers import (
    ContactSerializer,
    ItemSerializer,
    OrganizationSerializer,
    contact_queryset,
    item_queryset,
    organization_queryset,
)
from crm.auth import ScopePermission
from crm.models import ApiToken
from crm.services import record_crm_change


def audit_request_change(
    request: Request, verb: str, obj: Any, *, fields: Any = (), object_id: Any = ""
) -> None:
    """The audit event of an API write: actor = token (or session user), client address."""
    from governance.audit import actor_from_request, client_address

    record_crm_change(
        verb,
        obj,
        actor=actor_from_request(request),
        channel="api",
        address=client_address(request),
        fields=fields,
        object_id=object_id,
    )


class AuditedModelViewSet(viewsets.ModelViewSet):
    """ModelViewSet whose creates, updates and deletes write an audit event in the same transaction."""

    permission_classes = [ScopePermission]
    read_scope = ApiToken.Scope.CRM_READ.value
    write_scope = ApiToken.Scope.CRM_WRITE.value
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        with transaction.atomic():
            obj = serializer.save()
            audit_request_change(
                self.request, "created", obj, fields=serializer.validated_data.keys()
            )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        with transaction.atomic():
            obj = serializer.save()
            audit_request_change(
                self.request, "updated", obj, fields=serializer.validated_data.keys()
            )

    def perform_destroy(self, instance: Any) -> None:
        with transaction.atomic():
            audit_request_change(self.request, "deleted", instance)
            instance.delete()


class UpsertMixin:
    """``POST|PUT <collection>/upsert/``: update the record with the same upsert key (200) or
    create it (201). Fields left out of an update keep their values."""

    upsert_key: tuple[str, ...] = ("external_id",)

    def _upsert_lookup(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        missing = [
            k for k in self.upsert_key if not isinstance(data.get(k), str) or not data.get(k)
        ]
        if missing:
            raise serializers.ValidationError(
                {k: ["This field is required for an upsert (a non-empty string)."] for k in missing}
            )
        # The lookup runs before the serializer validates: PostgreSQL refuses NUL in text.
        nul = [k for k in self.upsert_key if "\x00" in data[k]]
        if nul:
            raise serializers.ValidationError(
                {k: ["Null characters are not allowed."] for k in nul}
            )
        return {k: data[k] for k in self.upsert_key}

    def _upsert_once(self, request: Request, lookup: dict[str, Any]) -> Response:
        with transaction.atomic():
            model = self.get_serializer_class().Meta.model  # type: ignore[attr-defined]
            instance = model.objects.select_for_update().filter(**lookup).first()
            serializer = self.get_serializer(
                instance, data=request.data, partial=instance is not None
            )  # type: ignore[attr-defined]
            serializer.is_valid(raise_exception=True)
            obj = serializer.save()
            verb = "updated" if instance is not None else "created"
            audit_request_change(request, verb, obj, fields=serializer.validated_data.keys())
        # Re-read so nested lists (emails, domains, contacts) show what was stored.
        fresh = self.get_queryset().get(pk=obj.pk)  # type: ignore[attr-defined]
        code = status.HTTP_200_OK if instance is not None else status.HTTP_201_CREATED
        return Response(self.get_serializer(fresh).data, status=code)  # type: ignore[attr-defined]

    @extend_schema(
        summary="Create or update by external id",
        responses={
            200: OpenApiResponse(description="An existing record was updated."),
            201: OpenApiResponse(description="A new record was created."),
            400: OpenApiResponse(description="Field errors."),
        },
    )
    @action(detail=False, methods=["post", "put"], url_path="upsert")
    def upsert(self, request: Request) -> Response:
        lookup = self._upsert_lookup(request.data)
        try:
            return self._upsert_once(request, lookup)
        except IntegrityError:
            # Two pushes of the same new record raced: the loser updates what the winner created.
            return self._upsert_once(request, lookup)


class ContactViewSet(UpsertMixin, AuditedModelViewSet):
    """Contacts with their e-mail addresses. Filter `email` matches primary and secondary ones."""

    serializer_class = ContactSerializer
    filterset_class = filters.ContactFilter
    search_fields = ["first_name", "last_name"]

    def get_queryset(self):
        return contact_queryset()


class OrganizationViewSet(UpsertMixin, AuditedModelViewSet):
    """Organizations with their registrable domains."""

    serializer_class = OrganizationSerializer
    filterset_class = filters.OrganizationFilter
    search_fields = ["name"]

    def get_queryset(self):
        return organization_queryset()


class ItemViewSet(UpsertMixin, AuditedModelViewSet):
    """Deals, leads, projects and tickets (one table; `kind` says which)."""

    serializer_class = ItemSerializer
    filterset_class = filters.ItemFilter
    search_fields = ["title", "external_ref"]
    upsert_key = ("kind", "external_id")

    def get_queryset(self):
        return item_queryset()
