"""CRM admin: the product's UI for users, teams, tokens, organizations, contacts and items.

Every save and delete writes an audit event (channel "admin") through crm.services; inline
addresses and domains are normalised by the same functions the API uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportModelAdmin

from core.admin import ScaleAdminMixin
from crm import services
from crm.addresses import InvalidAddress, normalize_address
from crm.models import (
    ApiToken,
    Contact,
    ContactEmail,
    Item,
    Organization,
    OrganizationDomain,
    Team,
    User,
    UserAddress,
)
from crm.resources import ContactResource, ItemResource, OrganizationResource

# Deleting captured data goes through services that write the audit log (docs/architecture.md, "Where code goes").
admin.site.disable_action("delete_selected")


def _client_address(request) -> str:
    from governance.audit import client_address

    return client_address(request)


class AuditedAdminMixin:
    """One audit event per save (fields and inlines changed) and per delete."""

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        changed = list(form.changed_data) + [fs.prefix for fs in formsets if fs.has_changed()]
        services.record_crm_change(
            "updated" if change else "created",
            form.instance,
            actor=request.user,
            channel="admin",
            address=_client_address(request),
            fields=changed,
        )

    def delete_model(self, request, obj) -> None:
        services.record_crm_change(
            "deleted", obj, actor=request.user, channel="admin", address=_client_address(request)
        )
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


# --- record panels: what other apps show on a record's change page -----------------------
# crm imports no other app (docs/architecture.md, "Layers"): an app that has something to
# show on a contact's, organization's or item's page (capture: the record's timeline)
# registers a function here from its admin module; each returns HTML for the page.

RecordPanel = Callable[[Any, Any], str]  # (request, record) -> HTML
_record_panels: list[RecordPanel] = []


def register_record_panel(panel: RecordPanel) -> None:
    """Show `panel(request, record)` below the fields of every CRM record's change page."""
    if panel not in _record_panels:
        _record_panels.append(panel)


class RecordPanelsMixin:
    change_form_template = "admin/crm/record_change_form.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and change:
            context["record_panels"] = [panel(request, obj) for panel in _record_panels]
        return super().render_change_form(  # type: ignore[misc]
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )


class ImportAuditMixin:
    """Pass the client address to the import resource, for its audit events."""

    def get_import_resource_kwargs(self, request, **kwargs) -> dict[str, Any]:
        kwargs = super().get_import_resource_kwargs(request, **kwargs)  # type: ignore[misc]
        kwargs.pop("form", None)
        return {**kwargs, "audit_address": _client_address(request)}


# --- users and teams ---------------------------------------------------------------------


class UserAddressForm(forms.ModelForm):
    class Meta:
        model = UserAddress
        fields = ["address", "kind"]

    def clean_address(self) -> str:
        try:
            return normalize_address(self.cleaned_data["address"])
        except InvalidAddress as e:
            raise forms.ValidationError(f"Enter a valid e-mail address ({e}).") from e


class UserAddressInline(admin.TabularInline):
    model = UserAddress
    form = UserAddressForm
    extra = 0
    fields = ["address", "kind", "verified_at", "created"]
    readonly_fields = ["verified_at", "created"]


@admin.register(User)
class UserAdmin(ScaleAdminMixin, AuditedAdminMixin, DjangoUserAdmin):
    list_display = [
        "username",
        "email",
        "first_name",
        "last_name",
        "role",
        "team",
        "is_staff",
        "is_active",
    ]
    list_select_related = ("team",)
    list_filter = ["role", "team", "is_staff", "is_superuser", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name", "addresses__address"]
    autocomplete_fields = ["team"]
    inlines = [UserAddressInline]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Mailwarden", {"fields": ("role", "team", "language")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        ("Mailwarden", {"fields": ("email", "role", "team", "language")}),
    )


@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "member_count", "updated"]
    search_fields = ["name"]
    list_filter = ["created"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members"))

    @admin.display(description=_("members"), ordering="_members")
    def member_count(self, obj: Team) -> int:
        return obj._members


# --- API tokens --------------------------------------------------------------------------


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = ApiToken
        fields = ["name", "user", "service", "scopes", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Create shows the secret once; afterwards only its prefix is visible (never the hash)."""

    form = ApiTokenForm
    list_display = [
        "name",
        "prefix",
        "user",
        "service",
        "scope_list",
        "last_used",
        "expires_at",
        "revoked_at",
    ]
    list_select_related = ("user",)
    list_filter = ["service", "revoked_at", "expires_at"]
    search_fields = ["name", "prefix", "service", "user__username"]
    autocomplete_fields = ["user"]
    actions = ["revoke_tokens"]
    exclude = ["key_hash"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "user", "service", "scopes", "expires_at"]
        return [
            "name",
            "prefix",
            "user",
            "service",
            "scope_list",
            "expires_at",
            "last_used",
            "revoked_at",
            "created",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["prefix", "user", "service", "scope_list", "last_used", "revoked_at", "created"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes)

    def save_model(self, request, obj: ApiToken, form, change) -> None:
        secret = None
        if not change:
            obj.scopes = sorted(set(form.cleaned_data["scopes"]))
            secret = services.assign_token_secret(obj)
        super().save_model(request, obj, form, change)
        services.record_crm_change(
            "updated" if change else "created",
            obj,
            actor=request.user,
            channel="admin",
            address=_client_address(request),
            fields=form.changed_data,
        )
        if secret:
            request._mailwarden_token_secret = secret  # for response_add, this request only

    def response_add(self, request, obj: ApiToken, post_url_continue=None):
        """Show the new secret on the page that answers the POST, and nowhere else.

        Not through Django's messages: their default storage is a signed (not encrypted)
        cookie, which would carry the secret to the browser's cookie jar and any proxy log.
        """
        secret = getattr(request, "_mailwarden_token_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        # Admin views are never_cache: the page is not stored by the browser either.
        return TemplateResponse(
            request,
            "admin/crm/apitoken/secret.html",
            {**self.admin_site.each_context(request), "token": obj, "secret": secret},
        )

    def delete_model(self, request, obj: ApiToken) -> None:
        services.record_crm_change(
            "deleted", obj, actor=request.user, channel="admin", address=_client_address(request)
        )
        super().delete_model(request, obj)

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke_tokens(self, request, queryset) -> None:
        count = services.revoke_api_tokens(
            queryset, actor=request.user, channel="admin", address=_client_address(request)
        )
        self.message_user(
            request, gettext("Revoked %(count)s token(s).") % {"count": count}, messages.SUCCESS
        )


# --- organizations -----------------------------------------------------------------------


class OrganizationDomainForm(forms.ModelForm):
    class Meta:
        model = OrganizationDomain
        fields = ["domain"]

    def clean_domain(self) -> str:
        try:
            domain = services.normalize_domain(self.cleaned_data["domain"])
            org = self.instance.organization if self.instance.organization_id else None
            services.check_domain_available(domain, org)
        except services.InvalidDomain as e:
            raise forms.ValidationError(str(e)) from e
        return domain


class OrganizationDomainInline(admin.TabularInline):
    model = OrganizationDomain
    form = OrganizationDomainForm
    extra = 1
    fields = ["domain", "created"]
    readonly_fields = ["created"]


@admin.register(Organization)
class OrganizationAdmin(
    ScaleAdminMixin, RecordPanelsMixin, AuditedAdminMixin, ImportAuditMixin, ImportExportModelAdmin
):
    resource_classes = [OrganizationResource]
    list_display = ["name", "domain_list", "owner", "source", "external_id", "updated"]
    list_select_related = ("owner",)
    list_filter = ["source", "owner"]
    search_fields = ["name", "=domains__domain", "=external_id"]
    autocomplete_fields = ["owner"]
    inlines = [OrganizationDomainInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("domains")

    @admin.display(description=_("domains"))
    def domain_list(self, obj: Organization) -> str:
        return ", ".join(sorted(d.domain for d in obj.domains.all()))


# --- contacts ----------------------------------------------------------------------------


class ContactEmailForm(forms.ModelForm):
    class Meta:
        model = ContactEmail
        fields = ["address", "is_primary"]

    def clean_address(self) -> str:
        try:
            return normalize_address(self.cleaned_data["address"])
        except InvalidAddress as e:
            raise forms.ValidationError(f"Enter a valid e-mail address ({e}).") from e


class ContactEmailFormSet(forms.BaseInlineFormSet):
    """Validates the whole list with the service (one primary, no duplicates)."""

    def clean(self) -> None:
        super().clean()
        rows = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE") or not data.get("address"):
                continue
            rows.append({"address": data["address"], "is_primary": data.get("is_primary", False)})
        try:
            self.email_specs = services.normalize_email_specs(rows)
        except services.InvalidEmails as e:
            raise forms.ValidationError(str(e)) from e


class ContactEmailInline(admin.TabularInline):
    model = ContactEmail
    form = ContactEmailForm
    formset = ContactEmailFormSet
    extra = 1
    fields = ["address", "is_primary", "created"]
    readonly_fields = ["created"]


@admin.register(Contact)
class ContactAdmin(
    ScaleAdminMixin, RecordPanelsMixin, AuditedAdminMixin, ImportAuditMixin, ImportExportModelAdmin
):
    resource_classes = [ContactResource]
    list_display = [
        "__str__",
        "email_list",
        "organization",
        "owner",
        "source",
        "marketing",
        "updated",
    ]
    list_select_related = ("organization", "owner")
    list_filter = ["source", "marketing", "owner"]
    search_fields = ["first_name", "last_name", "emails__address", "=external_id"]
    autocomplete_fields = ["organization", "owner"]
    inlines = [ContactEmailInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("emails")

    @admin.display(description=_("e-mail addresses"))
    def email_list(self, obj: Contact):
        rows = sorted(obj.emails.all(), key=lambda e: (not e.is_primary, e.address))
        return format_html_join(", ", "{}", ((e.address,) for e in rows))

    def save_formset(self, request, form, formset, change) -> None:
        if isinstance(formset, ContactEmailFormSet):
            # The service applies the list (primary switch included) and tells the address hooks.
            services.set_contact_emails(form.instance, formset.email_specs)
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return
        super().save_formset(request, form, formset, change)


# --- items -------------------------------------------------------------------------------


@admin.register(Item)
class ItemAdmin(
    ScaleAdminMixin, RecordPanelsMixin, AuditedAdminMixin, ImportAuditMixin, ImportExportModelAdmin
):
    resource_classes = [ItemResource]
    list_display = [
        "title",
        "kind",
        "status",
        "stage",
        "owner",
        "organization",
        "external_ref",
        "closed_at",
        "updated",
    ]
    list_select_related = ("owner", "organization")
    list_filter = ["kind", "status", "owner"]
    search_fields = ["title", "=external_ref", "=external_id", "organization__name"]
    autocomplete_fields = ["owner", "organization", "contacts"]
    readonly_fields = ["closed_at", "last_activity_at", "created", "updated"]
