"""Generic DRF pieces every app's API shares: strict serializers, the exception handler, id
path converter and router, filters that validate before they query, cursor pagination, the
OPTIONS metadata and the OpenAPI schema class that documents error responses.

This module knows nothing of the apps (it imports only Django, DRF, django-filter and
drf-spectacular), so
crm, governance and capture can all build on it; see docs/architecture.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, models
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import register_converter
from django.views.defaults import page_not_found
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import filters, serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import clone_request
from rest_framework.response import Response

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


# --- errors --------------------------------------------------------------------------------


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: model validation and integrity errors are the client's 400, not 500."""
    from rest_framework.views import exception_handler as drf_exception_handler  # see below

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


# --- path parameters -----------------------------------------------------------------------

BIGINT_MAX = 2**63 - 1  # the largest id PostgreSQL's bigint and SQLite's INTEGER hold


class DatabaseIdConverter:
    """`<dbid:pk>`: a record id, ASCII digits within the database's bigint range.

    Anything else (letters, a sign, other scripts' digits, 2**70) does not match the route, so
    it is a 404 before any view or query runs; the database never sees an out-of-range number.
    """

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > BIGINT_MAX:
            raise ValueError("beyond the database's integer range")  # Django: no match, 404
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


register_converter(DatabaseIdConverter, "dbid")


def api_page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 page, but the API's JSON error body for a URL under /api/ that matched no route."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


# --- filters -------------------------------------------------------------------------------


INTEGER_FIELDS = (models.AutoField, models.IntegerField)  # the *AutoField and *IntegerField kinds


class IdField(serializers.IntegerField):
    """A record id in a request body: a whole number from 1 to the database's bigint maximum
    (a larger one would overflow the database's integer, a 500 instead of a 400)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)


class IdFormField(forms.IntegerField):
    """A record id in a query string: a whole number from 1 to the database's bigint maximum."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (django-filter's NumberFilter takes decimals, which int() then truncates)."""

    field_class = forms.IntegerField


class IdFilter(IntegerFilter):
    """Filter by a record id (a foreign key or a many-to-many): 400 unless a valid id."""

    field_class = IdFormField


class BoundedModelChoiceField(django_filters.fields.ModelChoiceField):
    """django-filter's choice of a related record, checked to be a valid id before the query."""

    def to_python(self, value: Any) -> Any:
        target = (
            self.queryset.model._meta.get_field(self.to_field_name)
            if self.to_field_name
            else self.queryset.model._meta.pk
        )
        null = self.null_label is not None and value == self.null_value
        if value not in self.empty_values and not null and isinstance(target, INTEGER_FIELDS):
            IdFormField().clean(value)
        return super().to_python(value)


class BoundedModelChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = BoundedModelChoiceField


def _integer_range(field: models.Field) -> dict[str, Any]:
    low, high = connection.ops.integer_field_range(field.get_internal_type())
    return {"min_value": low, "max_value": high}


def _bounded_filter_defaults() -> dict[Any, dict[str, Any]]:
    defaults = dict(FILTER_FOR_DBFIELD_DEFAULTS)
    for cls in list(defaults):
        if issubclass(cls, INTEGER_FIELDS):
            defaults[cls] = {"filter_class": IntegerFilter, "extra": _integer_range}
    for cls in (models.ForeignKey, models.OneToOneField):
        defaults[cls] = {**defaults[cls], "filter_class": BoundedModelChoiceFilter}
    defaults[models.BigAutoField] = defaults[models.BigIntegerField] = {
        "filter_class": IntegerFilter,
        "extra": _integer_range,
    }
    return defaults


class FilterSet(django_filters.FilterSet):
    """The API's FilterSet: integer and related-record filters accept only whole numbers the
    column can hold (400 otherwise), so no query overflows (OverflowError on SQLite, a
    DataError on PostgreSQL). Declare id filters with :class:`IdFilter`."""

    FILTER_DEFAULTS = _bounded_filter_defaults()


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose `filterset_fields` build on core.api.FilterSet."""

    filterset_base = FilterSet


class SearchFilter(filters.SearchFilter):
    """DRF's `search`, refusing a NUL character (PostgreSQL text cannot hold one) with a 400."""

    def get_search_terms(self, request: Any) -> list[str]:
        terms = super().get_search_terms(request)
        if any("\x00" in term for term in terms):
            raise serializers.ValidationError(
                {self.search_param: ["Null characters are not allowed."]}
            )
        return terms


# --- pagination and metadata ---------------------------------------------------------------


class DefaultCursorPagination(CursorPagination):
    """Stable pages over tables that grow while being read (new mail keeps arriving).

    A cursor is opaque but comes from the client: one whose position is not a value of the
    ordering column (tampered, or 2**70) is an invalid cursor (404), never a failing query.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Any) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            value = field.to_python(cursor.position)
        except DjangoValidationError:
            raise NotFound(self.invalid_cursor_message) from None
        if isinstance(value, int):
            low, high = connection.ops.integer_field_range(field.get_internal_type())
            if (low is not None and value < low) or (high is not None and value > high):
                raise NotFound(self.invalid_cursor_message)
        elif "\x00" in str(value):
            raise NotFound(self.invalid_cursor_message)
        return cursor


class Metadata(SimpleMetadata):
    """DRF's OPTIONS answer, also for collection routes that take PUT (e.g. `upsert/`): DRF
    checks object permissions for PUT by loading the object, which a collection route has none of."""

    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        actions: dict[str, Any] = {}
        for method in {"PUT", "POST"} & set(view.allowed_methods):
            view.request = clone_request(request, method)
            try:
                if hasattr(view, "check_permissions"):
                    view.check_permissions(view.request)
                if (
                    method == "PUT"
                    and hasattr(view, "get_object")
                    and getattr(view, "detail", True)
                ):
                    view.get_object()
            except (APIException, PermissionDenied, Http404):
                pass
            else:
                actions[method] = self.get_serializer_info(view.get_serializer())
            finally:
                view.request = request
        return actions


# --- router and OpenAPI --------------------------------------------------------------------
# DRF's views module (which the router and drf-spectacular's AutoSchema import) reads the
# REST_FRAMEWORK settings when it loads, and they name the classes above: so it is imported
# here, after them, never at the top of this module.

from drf_spectacular import openapi as spectacular_openapi  # noqa: E402
from rest_framework.routers import DefaultRouter  # noqa: E402


class ApiRouter(DefaultRouter):
    """DRF's router with `path()` routes whose record ids use the `dbid` converter.

    No `.json`-style format suffixes: `?format=json` or an Accept header choose the format, and
    the suffix routes would double every path of the schema.
    """

    include_format_suffixes = False

    def __init__(self, trailing_slash: bool = True) -> None:
        super().__init__(trailing_slash=trailing_slash, use_regex_path=False)
        self._default_value_pattern = "dbid"


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error. `detail` (and sometimes `code`) for most; a 400 for bad input "
    "names each field instead: `{field: [messages]}`, nested by key or list index for nested "
    "fields (`{emails: {1: {address: [...]}}}`), `non_field_errors` for the whole object.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong."},
        "code": {"type": "string", "description": "A machine-readable reason, when there is one."},
    },
    "additionalProperties": {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}],
        "description": "Messages about one field (400).",
    },
}

ERROR_DESCRIPTIONS = {
    400: "Invalid input: field errors, a malformed body or a bad query parameter.",
    401: "No credentials, or an unknown, expired or revoked token.",
    403: "The token lacks the scope (or the user the role) this operation needs.",
    404: "No such record, or not one you may see.",
    415: "Unsupported Content-Type.",
    429: "Too many requests: retry after `Retry-After` seconds.",
}
LIST_NOT_FOUND = "Invalid cursor."
WRITE_METHODS = ("POST", "PUT", "PATCH")


def error_response(description: str) -> OpenApiResponse:
    """An error response for `extend_schema(responses=...)`; its body is the Error component."""
    return OpenApiResponse(description=description)


class AutoSchema(spectacular_openapi.AutoSchema):
    """drf-spectacular's AutoSchema that documents the error answers an operation can give,
    all with one body schema (component `Error`):

    - 401 and 403 when the view needs permissions, 429 when it is throttled;
    - 404 when the path names a record (and for lists: an invalid cursor);
    - 400 and 415 when the operation takes a request body, 400 when a list has filters;
    - whatever else the view declares with ``extend_schema(responses={409: error_response(...)})``
      (409, 413, 503...). A declared error without a body gets the Error body.
    """

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, description in self._error_codes().items():
            responses.setdefault(str(code), {"description": description})
        for code, response in responses.items():
            if code.isdigit() and int(code) >= 400 and not response.get("content"):
                response["content"] = {"application/json": {"schema": self._error_ref()}}
                if response.get("description") in (None, "", "No response body"):
                    response["description"] = ERROR_DESCRIPTIONS.get(int(code), "Error.")
        return dict(sorted(responses.items()))

    def _error_codes(self) -> dict[int, str]:
        view = self.view
        codes: dict[int, str] = {}
        takes_body = self.method in WRITE_METHODS and self._get_request_body() is not None
        is_list = self.method == "GET" and self._is_list_view()
        if takes_body or (is_list and self._get_filter_parameters()):
            codes[400] = ERROR_DESCRIPTIONS[400]
        if any(p is not AllowAny for p in getattr(view, "permission_classes", [])):
            codes[401] = ERROR_DESCRIPTIONS[401]
            codes[403] = ERROR_DESCRIPTIONS[403]
        if re.search(r"{\w+}", self.path):
            codes[404] = ERROR_DESCRIPTIONS[404]
        elif is_list and self._get_paginator() is not None:
            codes[404] = LIST_NOT_FOUND
        if takes_body:
            codes[415] = ERROR_DESCRIPTIONS[415]
        if getattr(view, "throttle_classes", None):
            codes[429] = ERROR_DESCRIPTIONS[429]
        return codes

    def _error_ref(self) -> dict[str, str]:
        component = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        return component.ref
