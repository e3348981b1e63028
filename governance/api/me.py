"""`/api/v1/me/...`: every signed-in user's own capture settings, connected addresses and
aliases, and personal never-log rules (self-service; tokens need capture:read / capture:write).

Views validate and call the services (governance/settings.py, crm/user_addresses.py,
governance/never_log.py), which audit every change.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import StrictSerializer
from crm import user_addresses
from crm.auth import ScopePermission, request_scopes
from crm.models import ApiToken, UserAddress
from crm.services import set_user_language
from governance import never_log
from governance.audit import actor_from_request, client_address
from governance.models import ASSOCIATION_KINDS, NeverLogRule, SyncedMailVisibility
from governance.settings import SettingsRejected, effective_settings, update_user_settings


class SelfServicePermission(ScopePermission):
    """Any signed-in user (session); tokens need capture:read to read, capture:write to change."""

    def has_permission(self, request, view) -> bool:
        if request_scopes(request) is None:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


class SelfServiceView:
    permission_classes = [SelfServicePermission]
    read_scope = ApiToken.Scope.CAPTURE_READ.value
    write_scope = ApiToken.Scope.CAPTURE_WRITE.value

    def audit_kwargs(self) -> dict[str, Any]:
        request = self.request  # type: ignore[attr-defined]
        return {
            "actor": actor_from_request(request),
            "channel": "api",
            "client": client_address(request),
        }


# --- settings ---------------------------------------------------------------------------------


class SettingValueSerializer(serializers.Serializer):
    value = serializers.JSONField(help_text="What applies to you.")
    locked = serializers.BooleanField(help_text="The organisation applies its default to all.")
    choice = serializers.JSONField(allow_null=True, help_text="Your own choice; null = default.")


class MySettingsSerializer(serializers.Serializer):
    privacy_mode = serializers.BooleanField(read_only=True)
    log_internal_mail = serializers.BooleanField(read_only=True)
    log_all = SettingValueSerializer(read_only=True)
    track = SettingValueSerializer(read_only=True)
    associations = SettingValueSerializer(read_only=True)
    synced_mail_visibility = SettingValueSerializer(read_only=True)
    private_by_default = SettingValueSerializer(read_only=True)
    language = serializers.CharField(
        read_only=True, help_text="The portal's language for you; empty = follow the browser."
    )


class MySettingsUpdateSerializer(StrictSerializer):
    log_all = serializers.BooleanField(required=False, allow_null=True)
    track = serializers.BooleanField(required=False, allow_null=True)
    associations = serializers.ListField(
        child=serializers.ChoiceField(choices=ASSOCIATION_KINDS), required=False, allow_null=True
    )
    synced_mail_visibility = serializers.ChoiceField(
        choices=SyncedMailVisibility.choices, required=False, allow_null=True
    )
    private_by_default = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="New threads you capture start private (visible to you alone).",
    )
    language = serializers.ChoiceField(
        choices=[("", "follow the browser"), *settings.LANGUAGES],
        required=False,
        allow_null=True,
        help_text="The portal's language for you; empty or null = follow the browser.",
    )


def _my_settings(user) -> dict[str, Any]:
    return {**effective_settings(user).as_dict(), "language": user.language}


class MySettingsView(SelfServiceView, generics.GenericAPIView):
    """Your capture settings: each value, whether the organisation locks it, and your choice."""

    serializer_class = MySettingsSerializer

    @extend_schema(summary="Read my settings", responses=MySettingsSerializer)
    def get(self, request: Request) -> Response:
        return Response(_my_settings(request.user))

    @extend_schema(
        summary="Change my settings (null = follow the organisation default)",
        request=MySettingsUpdateSerializer,
        responses=MySettingsSerializer,
    )
    def patch(self, request: Request) -> Response:
        data = MySettingsUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        language = changes.pop("language", None) if "language" in changes else False
        try:
            with transaction.atomic():
                update_user_settings(request.user, changes, **self.audit_kwargs())
                if language is not False:
                    set_user_language(request.user, language, **self.audit_kwargs())
        except SettingsRejected as e:
            raise ValidationError(e.errors) from e
        return Response(_my_settings(request.user))


# --- connected addresses and aliases ------------------------------------------------------------


class MyAddressSerializer(serializers.ModelSerializer):
    verified = serializers.SerializerMethodField()

    class Meta:
        model = UserAddress
        fields = ["id", "address", "kind", "verified", "verified_at", "created"]
        read_only_fields = fields

    def get_verified(self, obj: UserAddress) -> bool:
        return obj.verified_at is not None


class MyAddressCreateSerializer(StrictSerializer):
    address = serializers.CharField(max_length=254)
    kind = serializers.ChoiceField(choices=UserAddress.Kind.choices, default=UserAddress.Kind.ALIAS)


class VerifyCodeSerializer(StrictSerializer):
    code = serializers.CharField(max_length=12)


def _address_error(e: user_addresses.OwnAddressError, field: str) -> ValidationError:
    return ValidationError({field: [str(e)], "code": e.code})


class MyAddressViewSet(
    SelfServiceView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your connected addresses and aliases. An added one counts as yours once verified with
    the code mailed to it (POST again to get a new code)."""

    serializer_class = MyAddressSerializer
    queryset = UserAddress.objects.none()

    def get_queryset(self):
        return UserAddress.objects.filter(user=self.request.user).order_by("address")

    @extend_schema(request=MyAddressCreateSerializer, responses={201: MyAddressSerializer})
    def create(self, request: Request) -> Response:
        data = MyAddressCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row = user_addresses.add_own_address(
                request.user,
                data.validated_data["address"],
                data.validated_data["kind"],
                **self.audit_kwargs(),
            )
        except user_addresses.OwnAddressError as e:
            raise _address_error(e, "address") from e
        return Response(MyAddressSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VerifyCodeSerializer, responses=MyAddressSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: Any = None) -> Response:
        """Confirm the address with the code mailed to it (single use; expires; tries limited)."""
        row = self.get_object()
        data = VerifyCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row = user_addresses.verify_own_address(
                row, data.validated_data["code"], **self.audit_kwargs()
            )
        except user_addresses.OwnAddressError as e:
            raise _address_error(e, "code") from e
        return Response(MyAddressSerializer(row).data)

    def perform_destroy(self, instance: UserAddress) -> None:
        user_addresses.remove_own_address(instance, **self.audit_kwargs())


# --- personal never-log rules ---------------------------------------------------------------


class MyNeverLogRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = NeverLogRule
        fields = ["id", "kind", "value", "note", "created"]
        read_only_fields = fields


class MyNeverLogCreateSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=NeverLogRule.Kind.choices)
    value = serializers.CharField(max_length=254)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RemovalCountsSerializer(serializers.Serializer):
    messages = serializers.IntegerField()
    threads = serializers.IntegerField()
    attachments = serializers.IntegerField()


class MyNeverLogRuleViewSet(
    SelfServiceView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal never-log addresses and domains (only you and admins see them). After
    adding one, `removal-preview` counts what is already stored from it and `remove-stored`
    deletes it (your captures only) in the background."""

    serializer_class = MyNeverLogRuleSerializer
    queryset = NeverLogRule.objects.none()

    def get_queryset(self):
        return NeverLogRule.objects.filter(user=self.request.user).order_by("kind", "value")

    @extend_schema(request=MyNeverLogCreateSerializer, responses={201: MyNeverLogRuleSerializer})
    def create(self, request: Request) -> Response:
        data = MyNeverLogCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rule = never_log.add_never_log_rule(
                data.validated_data["kind"],
                data.validated_data["value"],
                user=request.user,
                note=data.validated_data["note"],
                **self.audit_kwargs(),
            )
        except never_log.NeverLogRejected as e:
            raise ValidationError({e.field: [str(e)]}) from e
        return Response(MyNeverLogRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: NeverLogRule) -> None:
        never_log.delete_never_log_rule(instance, **self.audit_kwargs())

    @extend_schema(request=None, responses=RemovalCountsSerializer)
    @action(detail=True, methods=["get"], url_path="removal-preview")
    def removal_preview(self, request: Request, pk: Any = None) -> Response:
        """Count your stored mail this rule matches (what `remove-stored` deletes)."""
        with transaction.atomic():
            counts = never_log.preview_never_log_removal(self.get_object(), **self.audit_kwargs())
        return Response(counts)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"], url_path="remove-stored")
    def remove_stored(self, request: Request, pk: Any = None) -> Response:
        """Delete your stored mail this rule matches, in the background."""
        never_log.queue_never_log_removal(self.get_object(), **self.audit_kwargs())
        return Response({"detail": "Removal queued."}, status=status.HTTP_202_ACCEPTED)
