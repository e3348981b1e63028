"""CSV/XLSX import and export of contacts, organizations and items (django-import-export).

Rows are matched by `id`, else by `external_id` (items: `kind` + `external_id`), else created.
Addresses and domains go through crm.services like every other path, so a bad address is a
row error shown on the import page, never a silently skipped value. Every saved row writes
an audit event (channel "admin"); the dry run's events roll back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from crm import services
from crm.models import Contact, Item, Organization, User

LIST_SEPARATOR = ";"


# --- extra contact columns: what other apps import with a contact ------------------------
# crm imports no app above it (docs/architecture.md, "Layers"): an app that keeps data about
# contacts (governance: the legal basis) registers its columns here; the contact import reads
# them from each row, lets the app check them before the row is saved (a ValidationError is
# the row's error on the import page) and hands them over after the contact is saved, in the
# import's transaction (a dry run rolls back what the app wrote).


@dataclass(frozen=True)
class ContactImportColumns:
    """`parse(values) -> parsed` (raises ValidationError) runs before the row is saved;
    `apply(contact, parsed, user, address)` after it, only when a column had a value."""

    columns: tuple[str, ...]
    parse: Callable[[dict[str, str]], Any]
    apply: Callable[[Contact, Any, Any, str], None]


_contact_import_columns: list[ContactImportColumns] = []


def register_contact_import_columns(extension: ContactImportColumns) -> None:
    """Import `extension.columns` with every contact row (see ContactImportColumns)."""
    if all(e.columns != extension.columns for e in _contact_import_columns):
        _contact_import_columns.append(extension)


class AuditedResource(resources.ModelResource):
    """Shared row matching, external_id clean-up and audit for the CRM resources."""

    lookup_keys: tuple[str, ...] = ("external_id",)

    def __init__(self, audit_address: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit_address = audit_address

    def get_instance(self, instance_loader, row):
        model = self._meta.model
        pk = str(row.get("id") or "").strip()
        if pk:
            if not pk.isdigit():
                raise ValidationError({"id": "Must be a whole number."})
            return model.objects.filter(pk=int(pk)).first()
        keys = {k: str(row.get(k) or "").strip() for k in self.lookup_keys}
        if all(keys.values()):
            return model.objects.filter(**keys).first()
        return None

    def after_init_instance(self, instance, new, row, **kwargs):
        if new and hasattr(instance, "source"):
            instance.source = Contact.Source.IMPORT

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        # Before model validation: "" is "no external id" (the column is unique where set).
        instance.external_id = (instance.external_id or "").strip() or None
        if hasattr(instance, "source") and not instance.source:
            instance.source = Contact.Source.IMPORT

    def save_instance(self, instance, is_create, row, **kwargs):
        super().save_instance(instance, is_create, row, **kwargs)
        services.record_crm_change(
            "created" if is_create else "updated",
            instance,
            actor=kwargs.get("user"),
            channel="admin",
            address=self.audit_address,
            detail={"via": "import"},
        )


def _split(text: Any) -> list[str]:
    return [
        p.strip()
        for p in str(text or "").replace(",", LIST_SEPARATOR).split(LIST_SEPARATOR)
        if p.strip()
    ]


class ContactResource(AuditedResource):
    """Columns: id, external_id, first_name, last_name, organization (id), owner (username),
    source, marketing, emails ("a@x.com;b@y.com", the first is primary), and the columns
    other apps registered (register_contact_import_columns: governance's legal basis)."""

    organization = fields.Field(
        attribute="organization",
        column_name="organization",
        widget=widgets.ForeignKeyWidget(Organization),
    )
    owner = fields.Field(
        attribute="owner", column_name="owner", widget=widgets.ForeignKeyWidget(User, "username")
    )
    emails = fields.Field(column_name="emails")

    class Meta:
        model = Contact
        fields = (
            "id",
            "external_id",
            "first_name",
            "last_name",
            "organization",
            "owner",
            "source",
            "marketing",
            "emails",
        )
        export_order = fields
        skip_unchanged = False
        clean_model_instances = True

    def dehydrate_emails(self, contact: Contact) -> str:
        rows = sorted(contact.emails.all(), key=lambda e: (not e.is_primary, e.address))
        return LIST_SEPARATOR.join(e.address for e in rows)

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        instance._import_emails = None
        if "emails" in row:
            try:
                instance._import_emails = services.parse_email_list(row.get("emails") or "")
            except services.InvalidEmails as e:
                raise ValidationError({"emails": str(e)}) from e
        instance._import_extras = []
        for extension in _contact_import_columns:
            values = {c: str(row.get(c) or "").strip() for c in extension.columns if c in row}
            if any(values.values()):
                instance._import_extras.append((extension, extension.parse(values)))

    def after_save_instance(self, instance, row, **kwargs):
        super().after_save_instance(instance, row, **kwargs)
        specs = getattr(instance, "_import_emails", None)
        if specs is not None:
            services.set_contact_emails(instance, specs)  # also tells the address hooks
        for extension, parsed in getattr(instance, "_import_extras", ()):
            extension.apply(instance, parsed, kwargs.get("user"), self.audit_address)


class OrganizationResource(AuditedResource):
    """Columns: id, external_id, name, owner (username), source, domains ("acme.com;acme.de")."""

    owner = fields.Field(
        attribute="owner", column_name="owner", widget=widgets.ForeignKeyWidget(User, "username")
    )
    domains = fields.Field(column_name="domains")

    class Meta:
        model = Organization
        fields = ("id", "external_id", "name", "owner", "source", "domains")
        export_order = fields
        skip_unchanged = False
        clean_model_instances = True

    def dehydrate_domains(self, org: Organization) -> str:
        return LIST_SEPARATOR.join(sorted(d.domain for d in org.domains.all()))

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        instance._import_domains = None
        if "domains" in row:
            try:
                instance._import_domains = services.normalize_domain_list(
                    _split(row.get("domains")), instance if instance.pk else None
                )
            except services.InvalidDomain as e:
                raise ValidationError({"domains": str(e)}) from e

    def after_save_instance(self, instance, row, **kwargs):
        super().after_save_instance(instance, row, **kwargs)
        domains = getattr(instance, "_import_domains", None)
        if domains is not None:
            services.set_organization_domains(instance, domains)


class ItemResource(AuditedResource):
    """Columns: id, kind, external_id, title, status, stage, value, currency, owner (username),
    organization (id), contacts (ids "12;15"), external_ref, closed_at."""

    lookup_keys = ("kind", "external_id")

    owner = fields.Field(
        attribute="owner", column_name="owner", widget=widgets.ForeignKeyWidget(User, "username")
    )
    organization = fields.Field(
        attribute="organization",
        column_name="organization",
        widget=widgets.ForeignKeyWidget(Organization),
    )
    contacts = fields.Field(
        attribute="contacts",
        column_name="contacts",
        widget=widgets.ManyToManyWidget(Contact, separator=LIST_SEPARATOR),
        m2m_add=False,
    )

    class Meta:
        model = Item
        fields = (
            "id",
            "kind",
            "external_id",
            "title",
            "status",
            "stage",
            "value",
            "currency",
            "owner",
            "organization",
            "contacts",
            "external_ref",
            "closed_at",
        )
        export_order = fields
        skip_unchanged = False
        clean_model_instances = True  # kind/status choices are checked per row
