"""Governance admin: organisation settings, never-log rules, the read-only audit log, and the
add-only consent history (with its panel on the contact page and its import columns)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ScaleAdminMixin
from crm.admin import register_record_panel
from crm.models import Contact
from crm.resources import ContactImportColumns, register_contact_import_columns
from governance import never_log
from governance.api.serializers import normalize_rule_value
from governance.audit import client_address, record_event
from governance.audit_review import export_audit_csv, verify_and_record
from governance.consent import (
    IMPORT_COLUMNS,
    ConsentRejected,
    apply_import_values,
    current_basis,
    parse_import_values,
    record_consent,
    validate_consent,
)
from governance.models import (
    AuditAnchor,
    AuditEvent,
    ConsentRecord,
    NeverLogRule,
    OrgSettings,
    UserSettings,
)
from governance.settings import clean_associations


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
        "privacy_mode",
        "log_internal_mail",
        "updated",
    ]
    list_filter = ["auto_create_contacts", "auto_generated_mail", "privacy_mode"]
    search_fields = ["company_name"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "company_name",
                    "internal_domains",
                    "privacy_mode",
                    "no_basis_mail",
                    "log_internal_mail",
                    "thread_window_days",
                )
            },
        ),
        (
            _("Private mail"),
            {
                "fields": ("private_subject_tags", "private_mail"),
                "description": "Mail tagged in its subject (e.g. [private]), sent with "
                "Sensitivity: Private or Company-Confidential, flagged private in the add-in, "
                "or in a thread its owner marked private is stored metadata-only and shown to "
                "its owner alone, or not stored at all.",
            },
        ),
        (
            _("Contacts created from mail"),
            {
                "fields": (
                    "auto_create_contacts",
                    "auto_create_from_free_mail",
                    "extra_free_mail_domains",
                    "extra_role_local_parts",
                    "auto_generated_mail",
                ),
                "description": "Role addresses (noreply@, info@, support@, ...) are never "
                "created as contacts; add more local parts to the role list here.",
            },
        ),
        (
            _("User defaults"),
            {
                "fields": (
                    ("log_all_by_default", "enforce_log_all"),
                    ("track_by_default", "enforce_track"),
                    ("default_associations", "enforce_associations"),
                    ("synced_mail_visibility", "enforce_synced_mail_visibility"),
                    ("private_by_default", "enforce_private_by_default"),
                ),
                "description": "Each user follows these unless they choose otherwise; "
                "“enforce” applies the default to all users and locks their own choice.",
            },
        ),
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        base_clean = form.clean

        def clean(self_form):
            data = base_clean(self_form)
            try:
                data["default_associations"] = clean_associations(
                    data.get("default_associations") or []
                )
            except ValueError as e:
                raise forms.ValidationError({"default_associations": [str(e)]}) from e
            tags = data.get("private_subject_tags")
            if tags is not None:
                if not isinstance(tags, list) or not all(
                    isinstance(t, str) and t.strip() and len(t) <= 100 for t in tags
                ):
                    raise forms.ValidationError(
                        {"private_subject_tags": ["Give a list of non-empty tags (≤ 100 chars)."]}
                    )
                data["private_subject_tags"] = list(dict.fromkeys(t.strip() for t in tags))
            return data

        form.clean = clean
        return form

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


@admin.register(UserSettings)
class UserSettingsAdmin(admin.ModelAdmin):
    """Users' own choices (they change them on /me/); empty = the organisation default."""

    list_display = [
        "user",
        "log_all",
        "track",
        "associations",
        "synced_mail_visibility",
        "private_by_default",
        "updated",
    ]
    list_select_related = ("user",)
    list_filter = ["log_all", "track", "synced_mail_visibility"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change) -> None:
        if obj.associations is not None:
            obj.associations = clean_associations(obj.associations)
        super().save_model(request, obj, form, change)
        record_event(
            "settings.changed",
            actor=request.user,
            obj=obj,
            channel="admin",
            address=client_address(request),
            detail={"user": obj.user_id, "fields": sorted(form.changed_data)},
        )


@admin.register(NeverLogRule)
class NeverLogRuleAdmin(AuditedPolicyAdmin):
    """Org-wide and personal never-log rules; a personal rule is listed to admins only (and
    its owner). Adding a rule, or the action, offers to remove the stored mail it matches."""

    form = NeverLogRuleForm
    list_display = ["value", "kind", "user", "note", "updated"]
    list_select_related = ("user",)
    list_filter = ["kind", ("user", admin.EmptyFieldListFilter)]
    search_fields = ["value", "note", "user__username"]
    autocomplete_fields = ["user"]
    actions = ["preview_and_remove_stored"]

    def get_queryset(self, request):
        return never_log.visible_never_log_rules(request.user)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/remove-stored/",
                self.admin_site.admin_view(self.remove_stored_view),
                name="governance_neverlogrule_remove_stored",
            ),
            *super().get_urls(),
        ]

    def _removal_url(self, rule: NeverLogRule) -> str:
        return reverse("admin:governance_neverlogrule_remove_stored", args=[rule.pk])

    def response_add(self, request, obj, post_url_continue=None):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        return HttpResponseRedirect(self._removal_url(obj))

    @admin.action(description=_("Preview and remove stored mail"), permissions=["change"])
    def preview_and_remove_stored(self, request, queryset):
        rules = list(queryset[:2])
        if len(rules) != 1:
            self.message_user(request, gettext("Select one rule at a time."), messages.WARNING)
            return None
        return HttpResponseRedirect(self._removal_url(rules[0]))

    def remove_stored_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The confirmation page: counts (audited preview), then POST queues the removal."""
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        rule = get_object_or_404(self.get_queryset(request), pk=object_id)
        audit = {"actor": request.user, "channel": "admin", "client": client_address(request)}
        if request.method == "POST":
            never_log.queue_never_log_removal(rule, **audit)
            self.message_user(
                request,
                gettext("Removal of the stored mail matching “%(rule)s” was queued.")
                % {"rule": rule},
            )
            return HttpResponseRedirect(reverse("admin:governance_neverlogrule_changelist"))
        with transaction.atomic():
            counts = never_log.preview_never_log_removal(rule, **audit)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Remove stored mail",
            "rule": rule,
            "counts": counts,
        }
        return TemplateResponse(
            request, "admin/governance/neverlogrule/remove_stored.html", context
        )


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


# --- audit review (docs/admin.md "Audit review") -------------------------------------------
# Filters by actor, action, channel, object type and date range; search by object ("type:id"
# or an id); a page per object with its whole history and the panels other layers register
# (capture adds every capture of a message: channel, mailbox or address, user, time); a CSV
# export safe against formula injection, itself audited; the chain verification on request.

ObjectHistoryPanel = Callable[[HttpRequest, str, str], str]
_object_history_panels: dict[str, list[ObjectHistoryPanel]] = {}


def register_object_history_panel(object_type: str, panel: ObjectHistoryPanel) -> None:
    """Show `panel(request, object_type, object_id)` (safe HTML) on the audit page of every
    object of `object_type` ("app_label.modelname"). Lets an upper layer (capture, config)
    add what governance cannot import."""
    panels = _object_history_panels.setdefault(object_type, [])
    if panel not in panels:
        panels.append(panel)


DISTINCT_CACHE_SECONDS = 600


class CachedDistinctFilter(admin.SimpleListFilter):
    """A filter whose choices are the column's distinct values, cached: the log is append-only
    and large, so the DISTINCT runs once per cache period, not on each page view."""

    field = ""

    def lookups(self, request, model_admin):
        key = f"mw:audit:distinct:{self.field}"
        values = cache.get(key)
        if values is None:
            values = [
                v
                for v in AuditEvent.objects.order_by(self.field)
                .values_list(self.field, flat=True)
                .distinct()[:500]
                if v
            ]
            cache.set(key, values, DISTINCT_CACHE_SECONDS)
        current = self.value()
        if current and current not in values:
            # newer than the cached list: still a choice, so the filter applies (a filter
            # without choices has no output, and Django then ignores its parameter)
            values = [*values, current]
        return [(v, v) for v in values]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class ActionFilter(CachedDistinctFilter):
    title = _("action")
    parameter_name = "action"
    field = "action"


class ChannelFilter(CachedDistinctFilter):
    title = _("channel")
    parameter_name = "channel"
    field = "channel"


class ObjectTypeFilter(CachedDistinctFilter):
    title = _("object type")
    parameter_name = "object_type"
    field = "object_type"


class ActorFilter(admin.SimpleListFilter):
    """Users who can act (staff and API users are few): one choice each, no scan of the log."""

    title = _("actor")
    parameter_name = "actor_user"

    def lookups(self, request, model_admin):
        from django.contrib.auth import get_user_model

        users = get_user_model().objects.order_by("username").values_list("pk", "username")[:500]
        return [(str(pk), name) for pk, name in users]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(actor_user_id=int(value))
        return queryset


class DateRangeFilter(admin.FieldListFilter):
    """From / to dates (inclusive) on a date-time field, as two GET parameters."""

    template = "admin/governance/auditevent/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_gte = f"{field_path}__date__gte"
        self.lookup_lte = f"{field_path}__date__lte"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = f"{field.verbose_name} (range)"
        # FieldListFilter.__init__ moved our parameters from params into used_parameters
        self.values: dict[str, date] = {}
        self.texts: dict[str, str] = {}
        for name in (self.lookup_gte, self.lookup_lte):
            raw = self.used_parameters.get(name)
            value = raw[-1] if isinstance(raw, list | tuple) else raw
            if not value:
                continue
            try:
                self.values[name] = date.fromisoformat(str(value))
            except ValueError as e:
                raise IncorrectLookupParameters(f"{name}: not a date (YYYY-MM-DD)") from e
            self.texts[name] = str(value)

    def has_output(self) -> bool:
        return True

    def expected_parameters(self):
        return [self.lookup_gte, self.lookup_lte]

    def queryset(self, request, queryset):
        start = self.values.get(self.lookup_gte)
        end = self.values.get(self.lookup_lte)
        tz = timezone.get_current_timezone()
        if start:
            queryset = queryset.filter(
                **{f"{self.field_path}__gte": datetime.combine(start, time.min, tzinfo=tz)}
            )
        if end:
            queryset = queryset.filter(
                **{
                    f"{self.field_path}__lt": datetime.combine(
                        end + timedelta(days=1), time.min, tzinfo=tz
                    )
                }
            )
        return queryset

    def choices(self, changelist):
        yield {
            "gte_name": self.lookup_gte,
            "lte_name": self.lookup_lte,
            "gte": self.texts.get(self.lookup_gte, ""),
            "lte": self.texts.get(self.lookup_lte, ""),
            "other_params": [
                (k, v)
                for k, values in changelist.params.items()
                if k not in (self.lookup_gte, self.lookup_lte, "p")
                for v in (values if isinstance(values, list) else [values])
            ],
            "clear_url": changelist.get_query_string(remove=[self.lookup_gte, self.lookup_lte]),
        }


@admin.register(AuditEvent)
class AuditEventAdmin(ScaleAdminMixin, ReadOnlyAdmin):
    change_list_template = "admin/governance/auditevent/change_list.html"
    list_display = [
        "created",
        "action",
        "actor_label",
        "actor_type",
        "object_link",
        "channel",
        "address",
        "seal_seq",
    ]
    list_select_related = ("actor_user",)
    list_filter = [
        ActorFilter,
        "actor_type",
        ActionFilter,
        ChannelFilter,
        ObjectTypeFilter,
        ("created", DateRangeFilter),
    ]
    search_fields = ["=action", "actor_label", "=object_id"]
    search_help_text = (
        "An object as type:id (capture.emailmessage:42), an object id, an action, or an actor."
    )
    date_hierarchy = None
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice scans the whole log
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

    @admin.display(description=_("detail"))
    def detail_json(self, obj: AuditEvent):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.detail, indent=2, sort_keys=True, default=str)
        )

    @admin.display(description=_("object"), ordering="object_id")
    def object_link(self, obj: AuditEvent):
        if not obj.object_type:
            return obj.object_id or "—"
        label = f"{obj.object_type}:{obj.object_id}" if obj.object_id else obj.object_type
        if not obj.object_id:
            return label
        return format_html(
            '<a href="{}">{}</a>', self._object_url(obj.object_type, obj.object_id), label
        )

    @staticmethod
    def _object_url(object_type: str, object_id: str) -> str:
        return reverse("admin:governance_auditevent_object", args=[object_type, object_id])

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        kind, sep, ident = term.partition(":")
        if sep and "." in kind and ident and " " not in term:
            return queryset.filter(object_type=kind.lower(), object_id=ident), False
        return super().get_search_results(request, queryset, search_term)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("export.csv", view(self.export_view), name="governance_auditevent_export"),
            path("verify/", view(self.verify_view), name="governance_auditevent_verify"),
            path(
                "object/<str:object_type>/<path:object_id>/",
                view(self.object_view),
                name="governance_auditevent_object",
            ),
            *super().get_urls(),
        ]

    def _denied(self, request) -> bool:
        return not self.has_view_permission(request)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The events the list shows with the same filters and search, as CSV (audited)."""
        if self._denied(request):
            raise PermissionDenied
        queryset = self.get_changelist_instance(request).queryset
        filters = {k: v for k, v in request.GET.items()}
        lines = export_audit_csv(
            queryset, actor=request.user, address=client_address(request), filters=filters
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
        return response

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """GET: a button; POST: verify the hash chain now and show the result (audited)."""
        if self._denied(request):
            raise PermissionDenied
        report = None
        if request.method == "POST":
            report = verify_and_record(actor=request.user, address=client_address(request))
        last = (
            AuditEvent.objects.filter(action="audit.chain_verified")
            .order_by("-id")
            .values("created", "actor_label", "detail")
            .first()
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Verify the audit chain",
            "report": report,
            "last": last,
        }
        return TemplateResponse(request, "admin/governance/auditevent/verify.html", context)

    def object_view(self, request: HttpRequest, object_type: str, object_id: str) -> HttpResponse:
        """Everything the log knows about one object, oldest first, plus registered panels."""
        if self._denied(request):
            raise PermissionDenied
        events = AuditEvent.objects.filter(object_type=object_type, object_id=object_id)
        page = Paginator(events.order_by("id"), 500).get_page(request.GET.get("p"))
        panels = [
            panel(request, object_type, object_id)
            for panel in _object_history_panels.get(object_type, [])
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"History of {object_type}:{object_id}",
            "object_type": object_type,
            "object_id": object_id,
            "page": page,
            "panels": [p for p in panels if p],
        }
        return TemplateResponse(request, "admin/governance/auditevent/object.html", context)


@admin.register(AuditAnchor)
class AuditAnchorAdmin(ReadOnlyAdmin):
    list_display = ["seal_seq", "hash", "created", "note"]
    list_filter = ["created"]
    search_fields = ["note", "=hash"]


# --- legal basis and consent -----------------------------------------------------------
# The history is append-only: rows are added (through governance.consent.record_consent, like
# every other door) and then only viewed. A contact's change page shows its current basis and
# history through crm.admin's record-panel registry (crm never imports governance), and the
# contact import reads the consent columns through crm.resources' column registry.


class ConsentRecordForm(forms.ModelForm):
    class Meta:
        model = ConsentRecord
        fields = [
            "contact",
            "purpose",
            "basis",
            "action",
            "effective_at",
            "source",
            "evidence_text",
            "evidence_file",
        ]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        problems = validate_consent(
            purpose=data.get("purpose", ""),
            basis=data.get("basis", ""),
            action=data.get("action", ""),
            source=data.get("source", ""),
            evidence_text=data.get("evidence_text", ""),
            evidence_file=data.get("evidence_file") or None,
        )
        if problems:
            raise forms.ValidationError(problems)
        return data


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ScaleAdminMixin, admin.ModelAdmin):
    """Add-only: existing rows are read-only for everyone, nobody deletes one."""

    form = ConsentRecordForm
    list_display = [
        "effective_at",
        "contact",
        "purpose",
        "basis",
        "action",
        "channel",
        "recorded_by_label",
        "recorded_at",
    ]
    list_select_related = ("contact",)
    list_filter = ["purpose", "basis", "action", "channel", "effective_at"]
    search_fields = [
        "=contact__id",
        "contact__first_name",
        "contact__last_name",
        "=contact__emails__address",
    ]
    autocomplete_fields = ["contact"]
    ordering = ["-effective_at", "-recorded_at", "-id"]
    readonly_fields = ["recorded_at", "recorded_by_label", "channel"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        contact = str(request.GET.get("contact") or "")
        if contact.isdigit():
            initial["contact"] = contact
        return initial

    def save_model(self, request, obj: ConsentRecord, form, change) -> None:
        try:
            record = record_consent(
                obj.contact_id,
                purpose=obj.purpose,
                basis=obj.basis,
                action=obj.action,
                effective_at=obj.effective_at,
                actor=request.user,
                channel=ConsentRecord.Channel.ADMIN,
                source=obj.source,
                evidence_text=obj.evidence_text,
                evidence_file=form.cleaned_data.get("evidence_file") or None,
                address=client_address(request),
            )
        except ConsentRejected as e:  # the form validated the same way: a race at most
            raise forms.ValidationError(str(e)) from e
        state = obj._state
        obj.__dict__.update({k: v for k, v in record.__dict__.items() if k != "_state"})
        state.adding, state.db = False, record._state.db


def consent_panel(request, record) -> str:
    """HTML for a contact's change page: its current basis, tracking consent and history."""
    if not isinstance(record, Contact):
        return ""
    state = current_basis(record.pk)
    rows = list(
        ConsentRecord.objects.filter(contact_id=record.pk).order_by(
            "-effective_at", "-recorded_at", "-id"
        )[:CONSENT_PANEL_ROWS]
    )
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                f"{r.effective_at:%Y-%m-%d %H:%M}",
                r.get_purpose_display(),
                r.get_basis_display(),
                r.get_action_display(),
                r.get_channel_display(),
                r.source,
                r.recorded_by_label,
            )
            for r in rows
        ),
    )
    history = (
        reverse("admin:governance_consentrecord_changelist") + f"?contact__id__exact={record.pk}"
    )
    add = reverse("admin:governance_consentrecord_add") + f"?contact={record.pk}"
    basis_label = ConsentRecord.Basis(state.basis).label
    return format_html(
        '<fieldset class="module"><h2>Legal basis and consent</h2>'
        "<p>Legal basis: <strong>{}</strong> · Tracking consent: <strong>{}</strong></p>"
        "<table><thead><tr><th>effective</th><th>purpose</th><th>basis</th><th>action</th>"
        "<th>channel</th><th>source</th><th>recorded by</th></tr></thead><tbody>{}</tbody></table>"
        '<p><a href="{}">Full history</a> · <a href="{}">Record a change</a></p></fieldset>',
        basis_label,
        state.tracking,
        body,
        history,
        add,
    )


CONSENT_PANEL_ROWS = 20
register_record_panel(consent_panel)
register_contact_import_columns(
    ContactImportColumns(
        columns=IMPORT_COLUMNS, parse=parse_import_values, apply=apply_import_values
    )
)

# Outbound webhooks: subscriptions and the delivery log (their own module).
import governance.outbound.admin  # noqa: E402, F401
