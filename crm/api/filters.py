"""Query filters of the CRM API (django-filter). A bad filter value answers 400, never 500."""

from __future__ import annotations

import django_filters
from django import forms

from core.api import FilterSet, IdFilter
from crm.addresses import InvalidAddress, normalize_address
from crm.models import Contact, Item, Organization
from crm.services import InvalidDomain, normalize_domain


class NormalizedEmailFormField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        try:
            return normalize_address(value)
        except InvalidAddress as e:
            raise forms.ValidationError("Enter a valid e-mail address.") from e


class NormalizedDomainFormField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        try:
            return normalize_domain(value)
        except InvalidDomain as e:
            raise forms.ValidationError(str(e)) from e


class EmailFilter(django_filters.CharFilter):
    field_class = NormalizedEmailFormField


class DomainFilter(django_filters.CharFilter):
    field_class = NormalizedDomainFormField


class ContactFilter(FilterSet):
    email = EmailFilter(
        field_name="emails__address",
        distinct=True,
        help_text="Exact address (normalised); matches primary and secondary addresses.",
    )
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated", lookup_expr="gte")

    class Meta:
        model = Contact
        fields = [
            "email",
            "organization",
            "owner",
            "external_id",
            "source",
            "marketing",
            "updated_after",
        ]


class OrganizationFilter(FilterSet):
    domain = DomainFilter(
        field_name="domains__domain", distinct=True, help_text="Registrable domain."
    )
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated", lookup_expr="gte")

    class Meta:
        model = Organization
        fields = ["domain", "owner", "external_id", "source", "updated_after"]


class ItemFilter(FilterSet):
    contact = IdFilter(field_name="contacts", distinct=True, help_text="Contact id.")
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated", lookup_expr="gte")

    class Meta:
        model = Item
        fields = [
            "kind",
            "status",
            "organization",
            "owner",
            "external_ref",
            "external_id",
            "contact",
            "updated_after",
        ]
