"""Serializers of the governance API. Unknown fields answer 400 (core.api's strict serializer)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.api import StrictModelSerializer
from crm.addresses import InvalidAddress, normalize_address
from governance import never_log
from governance.models import AuditEvent, NeverLogRule, OrgSettings
from governance.settings import clean_associations


def normalize_rule_value(kind: str, value: str) -> str:
    """governance.never_log.normalize_rule_value, answering 400 for a bad value."""
    try:
        return never_log.normalize_rule_value(kind, value)
    except never_log.NeverLogRejected as e:
        raise serializers.ValidationError({e.field: [str(e)]}) from e


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created",
            "actor_type",
            "actor_user",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "channel",
            "address",
            "detail",
            "seal_seq",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class NeverLogRuleSerializer(StrictModelSerializer):
    class Meta:
        model = NeverLogRule
        fields = ["id", "kind", "value", "user", "note", "created", "updated"]
        read_only_fields = ["id", "created", "updated"]
        validators: list = []  # uniqueness checked below, NULL user included

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        value = attrs.get("value", getattr(self.instance, "value", ""))
        user = attrs.get("user", getattr(self.instance, "user", None))
        attrs["value"] = normalize_rule_value(kind, value)
        clash = NeverLogRule.objects.filter(kind=kind, value=attrs["value"], user=user).exclude(
            pk=getattr(self.instance, "pk", None)
        )
        if clash.exists():
            raise serializers.ValidationError({"value": ["This rule already exists."]})
        return attrs


class DomainListField(serializers.ListField):
    child = serializers.CharField(max_length=253)

    def to_internal_value(self, data: Any) -> list[str]:
        values = super().to_internal_value(data)
        result: list[str] = []
        for value in values:
            try:
                host = normalize_address(f"postmaster@{value.strip().lstrip('@')}").partition("@")[
                    2
                ]
            except InvalidAddress as e:
                raise serializers.ValidationError(f"“{value}” is not a valid domain.") from e
            if host not in result:
                result.append(host)
        return result


class OrgSettingsSerializer(StrictModelSerializer):
    internal_domains = DomainListField(required=False)
    extra_free_mail_domains = DomainListField(required=False)
    extra_role_local_parts = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )
    private_subject_tags = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=50,
        help_text="Subject tags that mark a mail private (case-insensitive).",
    )

    class Meta:
        model = OrgSettings
        exclude = ["id"]
        read_only_fields = ["created", "updated"]

    def validate_default_associations(self, value: Any) -> list[str]:
        try:
            return clean_associations(value)
        except ValueError as e:
            raise serializers.ValidationError(str(e)) from e

    def validate_private_subject_tags(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip() for v in value if v.strip()))

    def validate_extra_role_local_parts(self, value: list[str]) -> list[str]:
        return sorted({v.strip().lower() for v in value if v.strip()})
