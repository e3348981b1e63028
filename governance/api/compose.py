"""`POST /api/v1/compose/check`: what would happen to each recipient of a mail about to be
sent (governance/compose.py). For add-ins: any signed-in user, tokens need capture:read."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import StrictSerializer
from crm.addresses import InvalidAddress, normalize_address
from crm.models import ApiToken
from governance.api.me import SelfServicePermission
from governance.compose import ROLES, Recipient, compose_check
from governance.eligibility import REASONS

MAX_RECIPIENTS = 500
REASON_CHOICES = [*REASONS, "sender_not_own"]


class AddressListField(serializers.ListField):
    child = serializers.CharField(max_length=320)

    def to_internal_value(self, data: Any) -> list[str]:
        values = super().to_internal_value(data)
        out, bad = [], []
        for value in values:
            try:
                out.append(normalize_address(value))
            except InvalidAddress:
                bad.append(value)
        if bad:
            raise serializers.ValidationError(
                [f"“{v[:100]}” is not an e-mail address." for v in bad[:10]]
            )
        return out


class ComposeCheckSerializer(StrictSerializer):
    sender = serializers.CharField(max_length=320, help_text="The From address of the mail.")
    to = AddressListField(required=False, max_length=MAX_RECIPIENTS)
    cc = AddressListField(required=False, max_length=MAX_RECIPIENTS)
    bcc = AddressListField(required=False, max_length=MAX_RECIPIENTS)

    def validate_sender(self, value: str) -> str:
        try:
            return normalize_address(value)
        except InvalidAddress as e:
            raise serializers.ValidationError(f"Not an e-mail address ({e}).") from e

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        count = sum(len(attrs.get(role, [])) for role in ROLES)
        if count == 0:
            raise serializers.ValidationError({"to": ["Give at least one recipient."]})
        if count > MAX_RECIPIENTS:
            raise serializers.ValidationError(
                {"to": [f"At most {MAX_RECIPIENTS} recipients in all."]}
            )
        return attrs


class CandidateSerializer(serializers.Serializer):
    contact = serializers.IntegerField()
    name = serializers.CharField()
    rank = serializers.IntegerField()
    why = serializers.ListField(child=serializers.DictField())


class RecipientCheckSerializer(serializers.Serializer):
    address = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    match = serializers.ChoiceField(
        choices=["one", "none", "several"], help_text="Contacts with this address."
    )
    contact = serializers.IntegerField(allow_null=True)
    candidates = CandidateSerializer(many=True, help_text="When several contacts match.")
    internal = serializers.BooleanField()
    basis = serializers.CharField(allow_null=True, help_text="The current legal basis.")
    may_log = serializers.BooleanField()
    log_reason = serializers.ChoiceField(choices=REASON_CHOICES)
    may_track = serializers.BooleanField()
    track_reason = serializers.ChoiceField(choices=REASON_CHOICES)


class SuggestedItemSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField()
    title = serializers.CharField()
    stage = serializers.CharField()
    last_activity_at = serializers.DateTimeField(allow_null=True)


class DefaultsSerializer(serializers.Serializer):
    log = serializers.BooleanField(help_text="Log this mail by default.")
    track = serializers.BooleanField(help_text="Track opens and clicks by default.")
    associations = serializers.ListField(child=serializers.CharField())
    suggested = SuggestedItemSerializer(
        many=True, help_text="The contacts' most recently active open items (at most five)."
    )


class SenderSerializer(serializers.Serializer):
    address = serializers.CharField()
    own = serializers.BooleanField(help_text="One of your own addresses (else nothing logs).")


class TrackingSerializer(serializers.Serializer):
    anonymous = serializers.BooleanField(help_text="Several recipients: opens are anonymous.")
    eligible = serializers.ListField(child=serializers.CharField())


class ComposeCheckResultSerializer(serializers.Serializer):
    sender = SenderSerializer()
    privacy_mode = serializers.BooleanField()
    recipients = RecipientCheckSerializer(many=True)
    defaults = DefaultsSerializer()
    tracking = TrackingSerializer()


class ComposeCheckView(APIView):
    """Per recipient: contact match, may log / may track and why; your defaults and the
    suggested records; whether tracking must be anonymous."""

    permission_classes = [SelfServicePermission]
    read_scope = ApiToken.Scope.CAPTURE_READ.value
    write_scope = ApiToken.Scope.CAPTURE_READ.value  # a question, it changes nothing

    @extend_schema(
        summary="Check a mail about to be sent",
        request=ComposeCheckSerializer,
        responses=ComposeCheckResultSerializer,
    )
    def post(self, request):
        s = ComposeCheckSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        v = s.validated_data
        recipients = [Recipient(a, role) for role in ROLES for a in v.get(role, [])]
        result = compose_check(request.user, v["sender"], recipients)
        return Response(ComposeCheckResultSerializer(result).data)
