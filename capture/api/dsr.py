"""`/api/v1/data-subject-requests/`: access, erasure and objection requests for an address
(docs/governance.md "Data-subject requests"). Compliance officers and admins (sessions) or
tokens with `governance:admin`. Creating an access request answers its archive password once;
`POST .../{id}/archive/` hands the archive to the user who made the request, once, before it
expires. The views validate and call capture.dsr.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from capture import dsr
from capture.models import DataSubjectRequest
from core.api import StrictSerializer, error_response
from crm.auth import ScopePermission, request_scopes
from crm.models import ApiToken
from governance.audit import actor_from_request, client_address

GOVERNANCE_ADMIN = ApiToken.Scope.GOVERNANCE_ADMIN.value


class DsrPermission(ScopePermission):
    """Tokens need governance:admin; session users must be compliance officers or admins."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request_scopes(request) is None:
            return bool(request.user.is_compliance)
        return True


class DataSubjectRequestSerializer(serializers.ModelSerializer):
    archive_ready = serializers.SerializerMethodField()

    class Meta:
        model = DataSubjectRequest
        fields = [
            "id", "kind", "address", "address_hash", "note", "state", "progress", "counts",
            "retained", "error", "requested_by", "created", "completed_at", "archive_ready",
            "archive_size", "archive_expires_at", "archive_downloaded_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_archive_ready(self, obj: DataSubjectRequest) -> bool:
        return bool(obj.archive_path)


class CreateRequestSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=DataSubjectRequest.Kind.choices)
    address = serializers.CharField(max_length=254)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CreatedRequestSerializer(DataSubjectRequestSerializer):
    password = serializers.CharField(
        read_only=True,
        help_text="Access requests: the archive's password, shown this once (empty otherwise).",
    )

    class Meta(DataSubjectRequestSerializer.Meta):
        fields = [*DataSubjectRequestSerializer.Meta.fields, "password"]
        read_only_fields = fields


class DataSubjectRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = DataSubjectRequest.objects.select_related("requested_by").order_by("-created", "-pk")
    serializer_class = DataSubjectRequestSerializer
    permission_classes = [DsrPermission]
    read_scope = GOVERNANCE_ADMIN
    write_scope = GOVERNANCE_ADMIN
    filterset_fields = ["kind", "state"]

    @extend_schema(request=CreateRequestSerializer, responses={201: CreatedRequestSerializer})
    def create(self, request):
        """Record a request and queue it (erasure and objection act at once when it runs)."""
        body = CreateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            req, password = dsr.create_request(
                body.validated_data["kind"],
                body.validated_data["address"],
                requested_by=request.user,
                actor=actor_from_request(request),
                note=body.validated_data["note"],
                channel="api",
                client=client_address(request),
            )
        except dsr.DsrRejected as e:
            raise ValidationError(e.errors) from None
        req.refresh_from_db()
        data = CreatedRequestSerializer(req).data | {"password": password}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The AES-encrypted zip (once)."
            ),
            409: error_response(
                "Not ready, already downloaded or expired (code `archive_unavailable`)."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        """Take the access archive: for the user who made the request, once (a POST, since
        it is deleted as it is handed over)."""
        req = self.get_object()
        try:
            data = dsr.take_archive(
                req, request.user, channel="api", client=client_address(request)
            )
        except PermissionError as e:
            return Response(
                {"detail": str(e), "code": "not_requester"}, status=status.HTTP_403_FORBIDDEN
            )
        except dsr.ArchiveUnavailable as e:
            return Response(
                {"detail": str(e), "code": "archive_unavailable"},
                status=status.HTTP_409_CONFLICT,
            )
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="subject-access-{req.pk}.zip"'
        return response


def register(router) -> None:
    router.register(
        "data-subject-requests", DataSubjectRequestViewSet, basename="data-subject-request"
    )
