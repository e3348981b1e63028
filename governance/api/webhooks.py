"""Outbound webhooks API: subscriptions (`/api/v1/webhooks/`) and their delivery log
(`/api/v1/webhook-deliveries/`), with replay. Doors over governance/outbound/.

Tokens need `governance:admin`; session users must be admins (a subscription sends changes
out of the system, so compliance officers do not get it by default).
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import StrictModelSerializer
from crm.auth import ScopePermission, request_scopes
from crm.models import ApiToken
from governance.audit import actor_from_request, client_address
from governance.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from governance.outbound import subscriptions as service
from governance.outbound.events import EVENT_TYPES

GOVERNANCE_ADMIN = ApiToken.Scope.GOVERNANCE_ADMIN.value
EVENT_TYPE_CHOICES = [(t.name, t.description) for t in EVENT_TYPES]


class WebhookPermission(ScopePermission):
    """Tokens need governance:admin; session users must be admins."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request_scopes(request) is None:
            return bool(request.user.is_admin_role)
        return True


class WebhookView:
    permission_classes = [WebhookPermission]
    read_scope = GOVERNANCE_ADMIN
    write_scope = GOVERNANCE_ADMIN

    def _audit(self) -> dict[str, Any]:
        request = self.request  # type: ignore[attr-defined]
        return {
            "actor": actor_from_request(request),
            "channel": "api",
            "address": client_address(request),
        }


class WebhookSubscriptionSerializer(StrictModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES), allow_empty=False
    )
    url = serializers.CharField(max_length=2000)

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "name",
            "url",
            "event_types",
            "enabled",
            "consecutive_failures",
            "disabled_reason",
            "disabled_at",
            "last_success_at",
            "last_failure_at",
            "created",
            "updated",
        ]
        read_only_fields = [
            "id",
            "consecutive_failures",
            "disabled_reason",
            "disabled_at",
            "last_success_at",
            "last_failure_at",
            "created",
            "updated",
        ]

    def validate_url(self, value: str) -> str:
        """The SSRF guard's answer with the other field errors (the service checks again)."""
        if self.instance is not None and value == self.instance.url:
            return value
        try:
            return service.clean_url(value)
        except service.WebhookRejected as e:
            raise serializers.ValidationError(e.errors["url"]) from None


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (whsec_...): shown this once, store it at the receiver.",
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


SecretSerializer = inline_serializer(
    "WebhookSecret", {"secret": serializers.CharField(help_text="Shown this once.")}
)


class WebhookSubscriptionViewSet(WebhookView, viewsets.ModelViewSet):
    """Subscriptions: a URL, the event types it gets (the `event_types` enum lists them; see
    docs/webhooks.md), enabled. The secret is generated and answered once, on create (and on
    rotate-secret)."""

    serializer_class = WebhookSubscriptionSerializer
    queryset = WebhookSubscription.objects.all()
    filterset_fields = ["enabled"]
    search_fields = ["name", "url"]
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def _rejected(self, error: service.WebhookRejected) -> serializers.ValidationError:
        return serializers.ValidationError(error.errors)

    @extend_schema(responses={201: WebhookSubscriptionCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            subscription, secret = service.create_subscription(
                name=data.get("name", ""),
                url=data["url"],
                event_types=data["event_types"],
                enabled=data.get("enabled", True),
                created_by=request.user,
                **self._audit(),
            )
        except service.WebhookRejected as e:
            raise self._rejected(e) from None
        body = WebhookSubscriptionSerializer(subscription).data
        return Response({**body, "secret": secret}, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: WebhookSubscriptionSerializer) -> None:
        try:
            serializer.instance = service.update_subscription(
                serializer.instance, dict(serializer.validated_data), **self._audit()
            )
        except service.WebhookRejected as e:
            raise self._rejected(e) from None

    def perform_destroy(self, instance: WebhookSubscription) -> None:
        service.delete_subscription(instance, **self._audit())

    @extend_schema(request=None, responses=SecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: Any = None) -> Response:
        """A new signing secret, answered once; the old one also signs for 24 hours."""
        secret = service.rotate_secret(self.get_object(), **self._audit())
        return Response({"secret": secret})


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "created",
            "destination",
            "response_code",
            "latency_ms",
            "error",
            "response_excerpt",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    payload = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "message_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "created",
            "last_attempt_at",
            "delivered_at",
            "response_code",
            "latency_ms",
            "last_error",
            "replay_of",
            "payload",
        ]
        read_only_fields = fields

    def get_payload(self, obj: WebhookDelivery) -> dict[str, Any]:
        return json.loads(obj.body)


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "attempt_log"]
        read_only_fields = fields


class WebhookDeliveryViewSet(
    WebhookView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The delivery log, newest first: status, attempts, the last response code and latency;
    one delivery with every attempt. `replay` sends one again."""

    serializer_class = WebhookDeliverySerializer
    queryset = WebhookDelivery.objects.all()
    filterset_fields = ["subscription", "status", "event_type", "message_id"]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return WebhookDeliveryDetailSerializer
        return WebhookDeliverySerializer

    def get_queryset(self):
        if self.action == "retrieve":
            return WebhookDelivery.objects.prefetch_related("attempt_log")
        return WebhookDelivery.objects.all()

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: Any = None) -> Response:
        """Send this delivery again (same webhook-id and body), at the end of its
        subscription's queue."""
        with transaction.atomic():
            replay = service.replay_delivery(self.get_object(), **self._audit())
        return Response(WebhookDeliverySerializer(replay).data, status=status.HTTP_202_ACCEPTED)
