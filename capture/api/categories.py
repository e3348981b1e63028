"""Categories: `/api/v1/categories/` (everyone with capture:read lists them; admins create,
reorder and deactivate) and `PATCH /api/v1/emails/{id}/categories/` (the thread's owner or an
admin sets a stored message's categories). The views validate and call capture.categories,
which checks the names and writes the audit events."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from capture import categories as service
from capture.models import Category
from capture.visibility import visible_emails
from core.api import StrictModelSerializer, StrictSerializer
from crm.auth import ScopePermission, request_scopes
from crm.models import ApiToken
from governance.audit import actor_from_request, client_address

GOVERNANCE_ADMIN = ApiToken.Scope.GOVERNANCE_ADMIN.value


def _audit(request) -> dict:
    return {
        "actor": actor_from_request(request),
        "channel": "api",
        "address": client_address(request),
    }


class CategoryPermission(ScopePermission):
    """Reading needs capture:read; changing needs governance:admin (tokens) or an admin user
    (sessions)."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        if request_scopes(request) is None:
            return bool(request.user.is_admin_role)
        return True


class CategorySerializer(StrictModelSerializer):
    class Meta:
        model = Category
        fields = ("id", "name", "active", "order", "created", "updated")
        read_only_fields = ("id", "created", "updated")


class CategoryUpdateSerializer(StrictSerializer):
    active = serializers.BooleanField(required=False)
    order = serializers.IntegerField(required=False, min_value=-1_000_000, max_value=1_000_000)

    def to_internal_value(self, data):
        if isinstance(data, dict) and "name" in data:
            raise ValidationError({"name": ["A category's name cannot change; deactivate it."]})
        return super().to_internal_value(data)


class CategoryViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Admin-defined categories; `?active=true` lists those that can be chosen."""

    serializer_class = CategorySerializer
    queryset = Category.objects.all()
    permission_classes = [CategoryPermission]
    read_scope = ApiToken.Scope.CAPTURE_READ.value
    write_scope = GOVERNANCE_ADMIN
    pagination_class = None  # a short, admin-made list
    filterset_fields = ["active"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = CategorySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        try:
            category = service.create_category(
                v["name"], active=v.get("active", True), order=v.get("order", 0), **_audit(request)
            )
        except service.CategoryRejected as e:
            raise ValidationError({"name": [f"{e.code}: {e.detail}"]}) from e
        return Response(CategorySerializer(category).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CategoryUpdateSerializer, responses=CategorySerializer)
    def partial_update(self, request, *args, **kwargs):
        category = self.get_object()
        serializer = CategoryUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        service.update_category(
            category, active=v.get("active"), order=v.get("order"), **_audit(request)
        )
        return Response(CategorySerializer(category).data)

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            return self.partial_update(request, *args, **kwargs)
        return super().update(request, *args, **kwargs)

    @extend_schema(request=None, responses=CategorySerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        category = self.get_object()
        service.update_category(category, active=False, **_audit(request))
        return Response(CategorySerializer(category).data)


class EmailCategoriesSerializer(StrictSerializer):
    categories = serializers.ListField(
        child=serializers.CharField(max_length=service.NAME_MAX),
        max_length=service.MAX_CATEGORIES,
        allow_empty=True,
    )


class EmailCategoriesView(APIView):
    """A stored message's categories: the thread's owner or an admin may set them."""

    permission_classes = [ScopePermission]
    read_scope = ApiToken.Scope.CAPTURE_READ.value
    write_scope = ApiToken.Scope.CAPTURE_WRITE.value

    def _email(self, request, pk: int):
        return get_object_or_404(
            visible_emails(request.user)
            .select_related("thread")
            .only("id", "categories", "thread__owner_id"),
            pk=pk,
        )

    @extend_schema(responses=EmailCategoriesSerializer)
    def get(self, request, pk: int):
        email = self._email(request, pk)
        return Response({"categories": list(email.categories or [])})

    @extend_schema(request=EmailCategoriesSerializer, responses=EmailCategoriesSerializer)
    def patch(self, request, pk: int):
        email = self._email(request, pk)
        user = request.user
        if not (user.is_admin_role or email.thread.owner_id == user.pk):
            raise PermissionDenied("Only the thread's owner or an admin can change its categories.")
        serializer = EmailCategoriesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            names = service.set_email_categories(
                email, serializer.validated_data["categories"], **_audit(request)
            )
        except service.CategoryRejected as e:
            raise ValidationError({"categories": [f"{e.code}: {e.detail}"]}) from e
        return Response({"categories": names})

    put = patch


def register(router: DefaultRouter) -> None:
    router.register("categories", CategoryViewSet, basename="category")
