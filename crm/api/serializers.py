"""Serializers of the CRM API. Writes normalise through crm.services, like the admin does.

They are strict (core.api.StrictModelSerializer): a field the serializer does not know answers
400 naming it (DRF silently ignores them by default, which hides typos in integrations).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import StrictModelSerializer, StrictSerializer
from crm import services
from crm.models import Contact, ContactEmail, Item, Organization, User


class BlankAsNullCharField(serializers.CharField):
    """external_id: "" and null both mean "none" (the column is unique where set)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str | None:
        value = super().to_internal_value(data)
        return value or None


def owner_field() -> serializers.PrimaryKeyRelatedField:
    return serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(),
        allow_null=True,
        required=False,
        help_text="User id of the owner.",
    )


# --- contacts ----------------------------------------------------------------------------


class ContactEmailSerializer(StrictSerializer):
    address = serializers.CharField(max_length=320, help_text="Normalised on write.")
    is_primary = serializers.BooleanField(default=False)

    def validate_address(self, value: str) -> str:
        try:
            return services.normalize_email_specs([value])[0].address
        except services.InvalidEmails as e:
            raise serializers.ValidationError("Enter a valid e-mail address.") from e


class ContactSerializer(StrictModelSerializer):
    emails = ContactEmailSerializer(
        many=True,
        required=False,
        help_text="All addresses of the contact; on write it replaces the list. First is primary "
        "unless one is marked is_primary.",
    )
    external_id = BlankAsNullCharField(
        max_length=200, help_text="The id of this record in the CRM of record (upsert key)."
    )
    owner = owner_field()

    class Meta:
        model = Contact
        fields = [
            "id",
            "first_name",
            "last_name",
            "organization",
            "owner",
            "source",
            "marketing",
            "external_id",
            "emails",
            "created",
            "updated",
        ]
        read_only_fields = ["id", "created", "updated"]

    def validate_external_id(self, value: str | None) -> str | None:
        if (
            value
            and Contact.objects.filter(external_id=value)
            .exclude(pk=getattr(self.instance, "pk", None))
            .exists()
        ):
            raise serializers.ValidationError("A contact with this external_id already exists.")
        return value

    def validate_emails(self, value: list[dict[str, Any]]) -> list[services.EmailSpec]:
        try:
            return services.normalize_email_specs(value)
        except services.InvalidEmails as e:
            raise serializers.ValidationError(str(e)) from e

    def create(self, validated_data: dict[str, Any]) -> Contact:
        specs = validated_data.pop("emails", None)
        validated_data.setdefault("source", Contact.Source.API)
        with transaction.atomic():
            contact = Contact.objects.create(**validated_data)
            if specs:
                services.set_contact_emails(contact, specs)
        return contact

    def update(self, instance: Contact, validated_data: dict[str, Any]) -> Contact:
        specs = validated_data.pop("emails", None)
        with transaction.atomic():
            contact = super().update(instance, validated_data)
            if specs is not None:
                services.set_contact_emails(contact, specs)
        return contact

    def to_representation(self, instance: Contact) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["emails"] = sorted(
            data.get("emails") or [], key=lambda e: (not e["is_primary"], e["address"])
        )
        return data


def contact_queryset():
    return Contact.objects.select_related("organization", "owner").prefetch_related(
        Prefetch("emails", queryset=ContactEmail.objects.order_by("-is_primary", "address"))
    )


# --- organizations -----------------------------------------------------------------------


@extend_schema_field({"type": "array", "items": {"type": "string", "example": "acme.co.uk"}})
class DomainListField(serializers.ListField):
    """Write: domains (or addresses, hosts); stored as registrable domains. Read: the domains."""

    child = serializers.CharField(max_length=253)

    def to_representation(self, data: Any) -> list[str]:
        rows = data.all() if hasattr(data, "all") else data
        return sorted(getattr(d, "domain", d) for d in rows)


class OrganizationSerializer(StrictModelSerializer):
    domains = DomainListField(
        required=False,
        help_text="Registrable domains (public suffix list); on write it replaces the list.",
    )
    external_id = BlankAsNullCharField(
        max_length=200, help_text="The id in the CRM of record (upsert key)."
    )
    owner = owner_field()

    class Meta:
        model = Organization
        fields = ["id", "name", "owner", "source", "external_id", "domains", "created", "updated"]
        read_only_fields = ["id", "created", "updated"]

    def validate_external_id(self, value: str | None) -> str | None:
        if (
            value
            and Organization.objects.filter(external_id=value)
            .exclude(pk=getattr(self.instance, "pk", None))
            .exists()
        ):
            raise serializers.ValidationError(
                "An organization with this external_id already exists."
            )
        return value

    def validate_domains(self, value: list[str]) -> list[str]:
        try:
            return services.normalize_domain_list(value, self.instance)
        except services.InvalidDomain as e:
            raise serializers.ValidationError(str(e)) from e

    def create(self, validated_data: dict[str, Any]) -> Organization:
        domains = validated_data.pop("domains", None)
        validated_data.setdefault("source", Organization.Source.API)
        with transaction.atomic():
            org = Organization.objects.create(**validated_data)
            if domains:
                services.set_organization_domains(org, domains)
        return org

    def update(self, instance: Organization, validated_data: dict[str, Any]) -> Organization:
        domains = validated_data.pop("domains", None)
        with transaction.atomic():
            org = super().update(instance, validated_data)
            if domains is not None:
                services.set_organization_domains(org, domains)
        return org


# --- items -------------------------------------------------------------------------------


class ItemSerializer(StrictModelSerializer):
    contacts = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Contact.objects.all(), required=False, help_text="Contact ids."
    )
    external_id = BlankAsNullCharField(
        max_length=200, help_text="The id in the CRM of record; upsert key together with kind."
    )
    owner = owner_field()

    class Meta:
        model = Item
        fields = [
            "id",
            "kind",
            "title",
            "status",
            "stage",
            "value",
            "currency",
            "owner",
            "organization",
            "contacts",
            "external_ref",
            "external_id",
            "closed_at",
            "last_activity_at",
            "created",
            "updated",
        ]
        read_only_fields = ["id", "created", "updated", "last_activity_at"]
        # (kind, external_id) uniqueness is checked in validate() with a clear message.
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        external_id = attrs.get("external_id", getattr(self.instance, "external_id", None))
        if kind and external_id:
            clash = Item.objects.filter(kind=kind, external_id=external_id).exclude(
                pk=getattr(self.instance, "pk", None)
            )
            if clash.exists():
                raise serializers.ValidationError(
                    {"external_id": [f"A {kind} with this external_id already exists."]}
                )
        return attrs


def item_queryset():
    return Item.objects.select_related("organization", "owner").prefetch_related("contacts")


def organization_queryset():
    return Organization.objects.select_related("owner").prefetch_related("domains")
