"""Generic DRF pieces every app's API shares: strict serializers, cursor pagination and the
exception handler.

This module knows nothing of the apps (it imports only Django, DRF and drf-spectacular), so
crm, governance and capture can all build on it; see docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

UNKNOWN_FIELD = "Unknown field."


# --- serializers ---------------------------------------------------------------------------


class RejectUnknownFieldsMixin:
    """Reject input keys that are not fields of the serializer (read-only fields are tolerated,
    so a client may send back what it read)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in data if k not in self.fields)  # type: ignore[attr-defined]
            if unknown:
                raise serializers.ValidationError({name: [UNKNOWN_FIELD] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A Serializer that answers 400 naming every field it does not know."""


class StrictModelSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A ModelSerializer that answers 400 naming every field it does not know."""


# --- pagination ----------------------------------------------------------------------------


class DefaultCursorPagination(CursorPagination):
    """Stable pages over tables that grow while being read (new mail keeps arriving)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500


# --- errors --------------------------------------------------------------------------------


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: model validation and integrity errors are the client's 400, not 500."""
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        return Response(
            {"non_field_errors": ["This conflicts with an existing record."]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return drf_exception_handler(exc, context)
