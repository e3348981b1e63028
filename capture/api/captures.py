"""REST ingest: `POST /api/v1/captures/` stores one message and answers 202 with its raw id.

Two bodies are accepted:
- `Content-Type: message/rfc822`: the raw RFC 822 bytes (channel `api`);
- `application/json` from a mail-client add-in: the raw MIME in base64 plus the user's choices
  (records to link, categories, attachments to keep) (channel `addin`).

`GET /api/v1/captures/{id}/` shows what became of it (status, reason, the stored email).
The view only validates, calls `capture.intake.store_raw_message_once` (idempotency and the
audit event live there) and reports (docs/architecture.md, "Where code goes").
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from capture.categories import unusable_categories
from capture.errors import MessageTooLarge, StoreUnavailable
from capture.intake import RawSpec, check_size, idempotency_key_for, store_raw_message_once
from capture.models import RawMessage
from core.api import IdField, error_response
from crm.auth import ScopePermission
from crm.models import Contact, Item, Organization
from governance.audit import actor_from_request, client_address

RETRY_AFTER_SECONDS = 30
IDEMPOTENCY_KEY_MAX = 120
LINK_MODELS = {"contacts": Contact, "organizations": Organization, "items": Item}


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The message is larger than this server accepts."
    default_code = "too_large"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The message store is unavailable; try again later."
    default_code = "store_unavailable"


def _too_large(size: int) -> PayloadTooLarge:
    limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
    return PayloadTooLarge(f"The message is {size} bytes; the limit is {limit} bytes.")


class RFC822Parser(BaseParser):
    """`message/rfc822` bodies arrive as the exact bytes sent (never decoded or re-encoded)."""

    media_type = "message/rfc822"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        if stream is None:
            return b""
        limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise _too_large(len(data))
        return data


# --- serializers ---------------------------------------------------------------------------


class LinksSerializer(serializers.Serializer):
    contacts = serializers.ListField(child=IdField(), required=False)
    organizations = serializers.ListField(child=IdField(), required=False)
    items = serializers.ListField(child=IdField(), required=False)

    def validate(self, attrs: dict[str, list[int]]) -> dict[str, list[int]]:
        errors: dict[str, list[str]] = {}
        for name, model in LINK_MODELS.items():
            wanted = sorted(set(attrs.get(name, [])))
            if not wanted:
                continue
            found = set(model.objects.filter(pk__in=wanted).values_list("pk", flat=True))
            unknown = [i for i in wanted if i not in found]
            if unknown:
                errors[name] = [f"Unknown ids: {', '.join(str(i) for i in unknown)}."]
            attrs[name] = wanted
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AddinCaptureSerializer(serializers.Serializer):
    """The add-in's JSON: raw MIME in base64 plus what the user chose."""

    mime_base64 = serializers.CharField(trim_whitespace=True)
    links = LinksSerializer(required=False)
    categories = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50
    )
    attachments = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        allow_null=True,
        help_text="Attachments to keep (sha256 or filename). Absent: all that policy allows; "
        "[]: none.",
    )
    source = serializers.CharField(max_length=200, required=False, allow_blank=True)
    private = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The user marked the mail private: stored metadata-only and visible to them "
        "alone, or not stored, as the organisation sets (docs/governance.md).",
    )

    def validate_categories(self, value: list[str]) -> list[str]:
        bad = unusable_categories(value)
        if bad:
            raise serializers.ValidationError(
                f"Not an active category: {', '.join(bad)} (GET /api/v1/categories/ lists them)."
            )
        return list(dict.fromkeys(value))

    def validate_mime_base64(self, value: str) -> bytes:
        compact = "".join(value.split())
        limit = settings.MAILWARDEN_MAX_MESSAGE_BYTES
        if len(compact) // 4 * 3 > limit + 2:
            raise _too_large(len(compact) // 4 * 3)
        try:
            data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError) as e:
            raise serializers.ValidationError("Not valid base64.") from e
        if not data.strip():
            raise serializers.ValidationError("The message is empty.")
        return data


class RawCaptureSerializer(serializers.ModelSerializer):
    """What became of a captured message."""

    url = serializers.SerializerMethodField()
    email_url = serializers.SerializerMethodField()

    class Meta:
        model = RawMessage
        fields = [
            "id",
            "url",
            "status",
            "reason_code",
            "reason_detail",
            "attempts",
            "channel",
            "source",
            "size",
            "sha256",
            "received_at",
            "processed_at",
            "email",
            "email_url",
        ]
        read_only_fields = fields

    def get_url(self, obj: RawMessage) -> str:
        return _absolute(self.context.get("request"), capture_path(obj.pk))

    def get_email_url(self, obj: RawMessage) -> str | None:
        if obj.email_id is None:
            return None
        return _absolute(self.context.get("request"), email_path(obj.email_id))


class CaptureAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.URLField()
    duplicate = serializers.BooleanField()


def capture_path(raw_id: int) -> str:
    return reverse("capture-detail", kwargs={"pk": raw_id})


def email_path(email_id: int) -> str:
    try:
        return reverse("email-detail", kwargs={"pk": email_id})
    except NoReverseMatch:  # the emails endpoint registers its own route name
        return f"/api/v1/emails/{email_id}/"


def _absolute(request: Any, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


# --- views ---------------------------------------------------------------------------------


class CaptureViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Submit mail for capture and follow what became of it."""

    serializer_class = RawCaptureSerializer
    queryset = RawMessage.objects.none()  # the real one is per user (get_queryset)
    permission_classes = [ScopePermission]
    read_scope = "capture:read"
    write_scope = "capture:write"
    parser_classes = [RFC822Parser, JSONParser]
    filterset_fields = ["status", "channel"]

    def get_queryset(self):
        qs = RawMessage.objects.order_by("-id")
        if getattr(self, "swagger_fake_view", False):
            return qs.none()
        user = self.request.user
        if getattr(user, "is_compliance", False):
            return qs
        return qs.filter(user=user)

    def get_serializer_class(self):
        if self.action == "create":
            return AddinCaptureSerializer
        return RawCaptureSerializer

    @extend_schema(
        request={
            "application/json": AddinCaptureSerializer,
            "message/rfc822": OpenApiTypes.BINARY,
        },
        responses={
            202: CaptureAcceptedSerializer,
            413: error_response("The message is larger than MAILWARDEN_MAX_MESSAGE_BYTES."),
            503: error_response("The message store is unavailable: retry after `Retry-After`."),
        },
    )
    def create(self, request, *args, **kwargs):
        raw_key = (request.headers.get("Idempotency-Key") or "").strip()
        if len(raw_key) > IDEMPOTENCY_KEY_MAX:
            raise ParseError(f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX} characters.")
        if isinstance(request.data, bytes):
            data = request.data
            if not data.strip():
                raise ParseError("The message is empty.")
            channel, options = RawMessage.Channel.API, {}
            source = (request.headers.get("User-Agent") or "")[:200]
        else:
            serializer = AddinCaptureSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            v = serializer.validated_data
            data = v["mime_base64"]
            channel = RawMessage.Channel.ADDIN
            options = {
                "links": {k: v["links"].get(k, []) for k in LINK_MODELS} if "links" in v else {},
                "categories": list(v.get("categories", [])),
            }
            if v.get("attachments") is not None:
                options["attachments"] = list(v["attachments"])
            if v.get("private"):
                options["private"] = True
            source = v.get("source", "")
        try:
            check_size(len(data))
        except MessageTooLarge as e:
            raise _too_large(e.size) from e

        key = idempotency_key_for(request.user.pk, data, client_key=raw_key, options=options)
        spec = RawSpec(
            data=data,
            channel=channel,
            user_id=request.user.pk,
            source=source,
            idempotency_key=key,
            options=options,
        )
        return accept_capture(request, spec)


def accept_capture(request: Any, spec: RawSpec, **extra: Any) -> Response:
    """Store raw mail once (idempotent) and answer 202 with its id, status and URL; 503 with
    Retry-After when the store is down. The captures endpoint and the add-in's appointment
    door both answer this way."""
    try:
        raw, duplicate = store_raw_message_once(
            spec, actor=actor_from_request(request), address=client_address(request)
        )
    except StoreUnavailable:
        return _unavailable()
    body = {
        "id": raw.pk,
        "status": raw.status,
        "url": _absolute(request, capture_path(raw.pk)),
        "duplicate": duplicate,
        **extra,
    }
    return Response(body, status=status.HTTP_202_ACCEPTED)


def _unavailable() -> Response:
    exc = ServiceUnavailable()
    return Response(
        {"detail": exc.detail},
        status=exc.status_code,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def register(router: DefaultRouter) -> None:
    """Add this module's viewsets to the capture router."""
    router.register("captures", CaptureViewSet, basename="capture")
