"""`/api/v1/capture-addresses/`: a user's capture addresses (admins see everyone's).

POST creates an address (a user: another personal address for themselves; an admin: a
personal or shared address for a named owner). Actions: `rotate` (old token revoked, new
one issued) and `revoke`. Every change is audited by capture.addresses (docs/architecture.md: views
validate and call the service).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from capture import addresses as service
from capture.models import CaptureAddress
from core.api import error_response
from crm.auth import ScopePermission
from crm.models import User
from governance.audit import actor_from_request, client_address


def sees_all(user) -> bool:
    return bool(getattr(user, "is_admin_role", False))


class CaptureAddressSerializer(serializers.ModelSerializer):
    address = serializers.CharField(read_only=True)
    owner = serializers.PrimaryKeyRelatedField(
        source="user",
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="Admins only; default: you.",
    )

    class Meta:
        model = CaptureAddress
        fields = ["id", "address", "owner", "kind", "label", "active", "revoked_at", "created"]
        read_only_fields = ["id", "address", "active", "revoked_at", "created"]

    def validate(self, attrs):
        request = self.context["request"]
        owner = attrs.get("user", request.user)
        if not sees_all(request.user):
            if owner != request.user:
                raise serializers.ValidationError(
                    {"owner": "Only admins can create an address for someone else."}
                )
            if attrs.get("kind") == CaptureAddress.Kind.SHARED:
                raise serializers.ValidationError(
                    {"kind": "Only admins can create org-wide (shared) addresses."}
                )
        if attrs.get("kind") == CaptureAddress.Kind.SHARED and not attrs.get("label"):
            raise serializers.ValidationError({"label": "Name the shared inbox."})
        attrs["user"] = owner
        return attrs


class CaptureAddressViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CaptureAddressSerializer
    queryset = CaptureAddress.objects.none()  # the real one is per user (get_queryset)
    permission_classes = [ScopePermission]
    read_scope = "capture:read"
    write_scope = "capture:write"
    filterset_fields = ["kind", "active", "user"]
    search_fields = ["label"]

    def get_queryset(self):
        qs = CaptureAddress.objects.select_related("user")
        user = self.request.user
        return qs if sees_all(user) else qs.filter(user=user)

    def _audit(self) -> dict:
        return {
            "actor": actor_from_request(self.request),
            "channel": "api",
            "address": client_address(self.request),
        }

    def perform_create(self, serializer: CaptureAddressSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = service.create_capture_address(
            data["user"],
            kind=data.get("kind", CaptureAddress.Kind.PERSONAL),
            label=data.get("label", ""),
            **self._audit(),
        )

    @extend_schema(
        request=None,
        responses={
            201: CaptureAddressSerializer,
            409: error_response("The address is already revoked (code `revoked`)."),
        },
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        """Revoke this address and issue a new one (mail to the old one then gets 550 5.1.1)."""
        addr = self.get_object()
        if not addr.active:
            return Response(
                {"detail": "This address is already revoked.", "code": "revoked"},
                status=status.HTTP_409_CONFLICT,
            )
        new = service.rotate_capture_address(addr, **self._audit())
        return Response(self.get_serializer(new).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke this address: mail to it is refused with 550 5.1.1."""
        addr = service.revoke_capture_address(self.get_object(), **self._audit())
        return Response(self.get_serializer(addr).data)


def register(router: DefaultRouter) -> None:
    """Add this module's viewsets to the capture router."""
    router.register("capture-addresses", CaptureAddressViewSet, basename="capture-address")
