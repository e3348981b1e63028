"""Governance admin: organisation settings, never-log rules, and the read-only audit log."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property
from django.utils.html import format_html

from governance.api.serializers import normalize_rule_value
from governance.audit import client_address, record_event
from governance.models import AuditAnchor, AuditEvent, NeverLogRule, OrgSettings


class EstimatedCountPaginator(Paginator):
    """Counting a big append-only table on every page view is slow on PostgreSQL: use the
    planner's estimate for the unfiltered table, an exact count when filtered."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if connection.vendor == "postgresql" and query is not None and not query.where:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [self.object_list.model._meta.db_table],
                )
                row = cur.fetchone()
            if row and row[0] > 10_000:
                return int(row[0])
        return super().count


def _audit_policy_change(request, verb: str, obj, fields=()) -> None:
    record_event(
        f"governance.{obj._meta.model_name}.{verb}",
        actor=request.user,
        obj=obj,
        channel="admin",
        address=client_address(request),
        detail={"fields": sorted(fields)} if fields else {},
    )


class AuditedPolicyAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        _audit_policy_change(request, "updated" if change else "created", obj, form.changed_data)

    def delete_model(self, request, obj) -> None:
        _audit_policy_change(request, "deleted", obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(OrgSettings)
class OrgSettingsAdmin(AuditedPolicyAdmin):
    """One row: no add once it exists, never deleted."""

    list_display = [
        "__str__",
        "company_name",
        "auto_create_contacts",
        "auto_generated_mail",
        "updated",
    ]
    list_filter = ["auto_create_contacts", "auto_generated_mail"]
    search_fields = ["company_name"]

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not OrgSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class NeverLogRuleForm(forms.ModelForm):
    class Meta:
        model = NeverLogRule
        fields = ["kind", "value", "user", "note"]

    def clean(self):
        data = super().clean()
        if data.get("kind") and data.get("value"):
            try:
                data["value"] = normalize_rule_value(data["kind"], data["value"])
            except Exception as e:  # the serializer's ValidationError carries the message
                detail = getattr(e, "detail", {}).get("value", [str(e)])
                raise forms.ValidationError({"value": [str(m) for m in detail]}) from e
            clash = NeverLogRule.objects.filter(
                kind=data["kind"], value=data["value"], user=data.get("user")
            )
            if clash.exclude(pk=self.instance.pk).exists():
                raise forms.ValidationError({"value": ["This rule already exists."]})
            self.instance.value = data["value"]
        return data


@admin.register(NeverLogRule)
class NeverLogRuleAdmin(AuditedPolicyAdmin):
    form = NeverLogRuleForm
    list_display = ["value", "kind", "user", "note", "updated"]
    list_select_related = ("user",)
    list_filter = ["kind", ("user", admin.EmptyFieldListFilter)]
    search_fields = ["value", "note", "user__username"]
    autocomplete_fields = ["user"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, not even superusers (the log is append-only)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return bool(
            user.is_active and user.is_staff and getattr(user, "is_compliance", False)
        ) or super().has_view_permission(request, obj)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created",
        "action",
        "actor_label",
        "actor_type",
        "object_type",
        "object_id",
        "channel",
        "address",
        "seal_seq",
    ]
    list_select_related = ("actor_user",)
    list_filter = ["actor_type", "channel", "object_type", "created"]
    search_fields = ["=action", "actor_label", "=object_id"]
    date_hierarchy = None
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100
    ordering = ["-id"]
    fields = [
        "created",
        "action",
        "actor_type",
        "actor_user",
        "actor_label",
        "object_type",
        "object_id",
        "channel",
        "address",
        "detail_json",
        "seal_seq",
        "prev_hash",
        "hash",
    ]
    readonly_fields = fields

    @admin.display(description="detail")
    def detail_json(self, obj: AuditEvent):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.detail, indent=2, sort_keys=True, default=str)
        )


@admin.register(AuditAnchor)
class AuditAnchorAdmin(ReadOnlyAdmin):
    list_display = ["seal_seq", "hash", "created", "note"]
    list_filter = ["created"]
    search_fields = ["note", "=hash"]
