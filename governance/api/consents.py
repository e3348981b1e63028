"""Consent API: a contact's legal-basis and tracking-consent history (append-only) and its
current state.

`/api/v1/consents/` lists, creates and retrieves history rows; nothing updates or deletes one
(405). `/api/v1/contacts/{id}/consent/` answers the contact's current basis and tracking
consent with the rows that decided them. Reading needs `crm:read`, recording `crm:write`
(tokens) or a staff session: the legal basis is kept by whoever keeps the contact
(docs/api.md, "Consents").
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, serializers, viewsets
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from core.api import FilterSet, IdFilter, StrictModelSerializer, StrictSerializer
from crm.auth import ScopePermission
from crm.models import ApiToken, Contact
from governance.audit import actor_from_request, client_address
from governance.consent import (
    ConsentRejected,
    CurrentBasis,
    Provenance,
    current_basis,
    record_consent,
)
from governance.models import ConsentRecord


class ConsentView:
    permission_classes = [ScopePermission]
    read_scope = ApiToken.Scope.CRM_READ.value
    write_scope = ApiToken.Scope.CRM_WRITE.value


class ConsentRecordSerializer(StrictModelSerializer):
    contact = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.all(), help_text="Contact id."
    )
    effective_at = serializers.DateTimeField(
        required=False, help_text="When it takes effect (default: now); may lie in the future."
    )
    channel = serializers.CharField(
        read_only=True, help_text="The door it came through: admin, api, import, capture, dsr."
    )
    evidence_file = serializers.FileField(
        required=False,
        allow_empty_file=False,
        use_url=True,
        help_text="PDF, image, text or e-mail file (multipart/form-data), size-limited.",
    )

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "contact",
            "purpose",
            "basis",
            "action",
            "effective_at",
            "recorded_at",
            "recorded_by",
            "recorded_by_label",
            "channel",
            "source",
            "evidence_text",
            "evidence_file",
        ]
        read_only_fields = ["id", "recorded_at", "recorded_by", "recorded_by_label", "channel"]

    def create(self, validated_data: dict[str, Any]) -> ConsentRecord:
        request = self.context["request"]
        try:
            return record_consent(
                validated_data["contact"].pk,
                purpose=validated_data.get("purpose", ConsentRecord.Purpose.PROCESSING),
                basis=validated_data["basis"],
                action=validated_data.get("action", ConsentRecord.Action.GRANTED),
                effective_at=validated_data.get("effective_at"),
                actor=actor_from_request(request),
                channel=ConsentRecord.Channel.API,
                source=validated_data.get("source", ""),
                evidence_text=validated_data.get("evidence_text", ""),
                evidence_file=validated_data.get("evidence_file"),
                address=client_address(request),
            )
        except ConsentRejected as e:
            raise serializers.ValidationError(e.errors) from e


class ConsentRecordFilter(FilterSet):
    contact = IdFilter(field_name="contact_id")
    effective_after = django_filters.IsoDateTimeFilter(field_name="effective_at", lookup_expr="gte")
    effective_before = django_filters.IsoDateTimeFilter(field_name="effective_at", lookup_expr="lt")

    class Meta:
        model = ConsentRecord
        fields = ["contact", "purpose", "basis", "action", "channel"]


class ConsentRecordViewSet(
    ConsentView,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The append-only consent history, newest first: list, record (POST), retrieve."""

    serializer_class = ConsentRecordSerializer
    filterset_class = ConsentRecordFilter
    queryset = ConsentRecord.objects.all()
    parser_classes = [JSONParser, MultiPartParser, FormParser]


class ProvenanceSerializer(StrictSerializer):
    record_id = serializers.IntegerField()
    basis = serializers.CharField()
    action = serializers.CharField()
    effective_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    channel = serializers.CharField()
    source = serializers.CharField()
    recorded_by_id = serializers.IntegerField(allow_null=True)
    recorded_by_label = serializers.CharField()


class ContactConsentSerializer(StrictSerializer):
    contact = serializers.IntegerField(source="contact_id")
    basis = serializers.ChoiceField(choices=ConsentRecord.Basis.choices)
    has_basis = serializers.BooleanField()
    basis_provenance = ProvenanceSerializer(allow_null=True)
    tracking = serializers.ChoiceField(choices=["granted", "refused", "unknown"])
    tracking_provenance = ProvenanceSerializer(allow_null=True)
    history = serializers.CharField(help_text="The contact's consent history (URL).")


class ContactConsentView(ConsentView, generics.GenericAPIView):
    """A contact's current legal basis and tracking consent, derived from its history."""

    serializer_class = ContactConsentSerializer
    queryset = Contact.objects.all()

    @extend_schema(summary="A contact's current legal basis and tracking consent")
    def get(self, request: Request, pk: int) -> Response:
        contact = get_object_or_404(Contact.objects.only("id"), pk=pk)
        state: CurrentBasis = current_basis(contact.pk)
        history = reverse("consent-list", request=request) + f"?contact={contact.pk}"
        data = {
            "contact_id": state.contact_id,
            "basis": state.basis,
            "has_basis": state.has_basis,
            "basis_provenance": _provenance(state.basis_provenance),
            "tracking": state.tracking,
            "tracking_provenance": _provenance(state.tracking_provenance),
            "history": history,
        }
        return Response(self.get_serializer(data).data)


def _provenance(p: Provenance | None) -> dict[str, Any] | None:
    return None if p is None else p.__dict__
