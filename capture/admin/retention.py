"""Retention admin (docs/retention.md): policies (saving shows first what the change makes due
and asks to confirm), legal holds (what each covers, a link to its messages, release), each
message's expiry and why, purge runs with the next run's plan, the bin (restore), disposition
reviews (decide with a justification), recompute jobs with their progress. Every change goes
through capture.retention, capture.holds or capture.purge, which audit it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture import holds as hold_service
from capture import purge as purge_service
from capture import retention as service
from capture import reviews
from capture.models import (
    BinnedMessage,
    DispositionReview,
    ExpiringMessage,
    ExpiryJob,
    LegalHold,
    PurgeRun,
    RetentionPolicy,
)
from core.admin import ScaleAdminMixin
from governance.audit import client_address


def _audit(request) -> dict:
    return {"actor": request.user, "channel": "admin", "address": client_address(request)}


def _choices(values) -> list[tuple[str, str]]:
    return [(v, v) for v in sorted(values)]


def _checkboxes(scope: str) -> forms.MultipleChoiceField:
    """A scope of a policy: any of its choices, none = any."""
    return forms.MultipleChoiceField(
        choices=_choices(service.CHOICES[scope]),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class RetentionPolicyForm(forms.ModelForm):
    link_kinds = _checkboxes("link_kinds")
    channels = _checkboxes("channels")
    directions = _checkboxes("directions")
    stored_levels = _checkboxes("stored_levels")
    legal_bases = _checkboxes("legal_bases")
    categories = forms.CharField(
        required=False, help_text="Category names, comma-separated (empty = any).", max_length=2000
    )
    confirm = forms.BooleanField(
        required=False,
        label="I have seen what this change makes due",
        help_text="Saving first shows how many messages the change makes due; tick to save.",
    )

    class Meta:
        model = RetentionPolicy
        fields = (
            "name", "description", "enabled", "order", "link_kinds", "organizations",
            "categories", "channels", "directions", "stored_levels", "legal_bases",
            "unlinked_only", "trigger", "duration_days", "action", "reviewer",
        )  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.initial.get("categories"), list):
            self.initial["categories"] = ", ".join(self.initial["categories"])

    def clean_categories(self) -> list[str]:
        raw = self.cleaned_data.get("categories") or ""
        return [c.strip() for c in raw.split(",") if c.strip()]

    def clean(self):
        data = super().clean()
        for field, errors in service.validate_policy(data).items():
            if field in self.fields:
                self.add_error(field, errors)
        if self.errors or data.get("confirm"):
            return data
        if self.instance.pk and not self.has_changed():
            return data
        plan = service.preview(data, pk=self.instance.pk)
        after, before, newly = plan["after"], plan["before"], plan["newly_due"]
        raise forms.ValidationError(
            "Saving this policy would make due: "
            + "; ".join(
                f"{label}: {after[label]} (today {before[label]}, {newly[label]} newly)"
                for label in ("now", "7d", "30d", "90d")
            )
            + ". Tick the confirmation box and save again to apply it."
        )


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ScaleAdminMixin, admin.ModelAdmin):
    form = RetentionPolicyForm
    list_display = (
        "name",
        "enabled",
        "order",
        "trigger",
        "duration_days",
        "action",
        "explicit",
        "updated",
    )
    list_filter = ("enabled", "action", "trigger")
    search_fields = ("name",)
    ordering = ("order", "id")
    filter_horizontal = ("organizations",)
    actions = ("recompute_now",)

    @admin.display(boolean=True, description=_("Explicit scope"))
    def explicit(self, obj: RetentionPolicy) -> bool:
        return service.Spec.of(obj).explicit

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        job = service.policy_saved(form.instance, created=not change, **_audit(request))
        if job is not None:
            self.message_user(
                request,
                f"Expiry is being recomputed (job {job.pk}: see Expiry jobs).",
                messages.INFO,
            )

    def delete_model(self, request, obj) -> None:
        service.delete_policy(obj, **_audit(request))

    def delete_queryset(self, request, queryset) -> None:
        for policy in queryset:
            service.delete_policy(policy, **_audit(request))

    @admin.action(description=_("Recompute every message's expiry now"))
    def recompute_now(self, request, queryset) -> None:
        with transaction.atomic():
            job = service.queue_recompute("admin: recompute")
        self.message_user(request, f"Recompute queued ({job.pk if job else 'nothing to do'}).")


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = (
            "name", "reason", "contacts", "organizations", "items", "threads",
            "date_from", "date_to", "saved_filter",
        )  # fmt: skip

    def clean_saved_filter(self):
        value = self.cleaned_data.get("saved_filter") or {}
        errors = hold_service.validate_saved_filter(value)
        if errors:
            raise forms.ValidationError(errors)
        return value


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    form = LegalHoldForm
    list_display = ("name", "active", "created_by", "created", "released_at", "covers")
    list_filter = ("active",)
    search_fields = ("name", "reason")
    autocomplete_fields = ()
    raw_id_fields = ("contacts", "organizations", "items", "threads")
    readonly_fields = ("covers", "active", "created_by", "released_at", "released_by")
    actions = ("release",)

    @admin.display(description=_("Covers"))
    def covers(self, obj: LegalHold) -> str:
        if not obj.pk or not obj.active:
            return "—"
        c = hold_service.coverage(obj)
        url = reverse("admin:capture_expiringmessage_changelist") + f"?hold={obj.pk}"
        return format_html(
            '<a href="{}">{} messages in {} threads</a>', url, c["messages"], c["threads"]
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # released, never deleted (the audit keeps both ends)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.active)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        hold_service.hold_placed(form.instance, **_audit(request))

    @admin.action(description=_("Release the selected holds"))
    def release(self, request, queryset) -> None:
        n = 0
        for hold in queryset.filter(active=True):
            hold_service.release_hold(hold, **_audit(request))
            n += 1
        self.message_user(request, gettext("%(n)s hold(s) released.") % {"n": n}, messages.SUCCESS)


class HoldFilter(admin.SimpleListFilter):
    title = _("legal hold")
    parameter_name = "hold"

    def lookups(self, request, model_admin):
        return [(str(h.pk), h.name) for h in LegalHold.objects.filter(active=True)]

    def queryset(self, request, queryset):
        if not self.value() or not self.value().isdigit():
            return queryset
        hold = LegalHold.objects.filter(pk=int(self.value()), active=True).first()
        if hold is None:
            return queryset.none()
        return queryset.filter(hold_service.hold_filter(hold))


@admin.register(ExpiringMessage)
class ExpiringMessageAdmin(ScaleAdminMixin, admin.ModelAdmin):
    """Read-only: when each message expires, what then, and why."""

    list_display = (
        "id",
        "date",
        "expires_at",
        "expiry_action",
        "expiry_policy",
        "why",
        "disposition",
    )
    list_filter = (HoldFilter, "expiry_action", "disposition", "expiry_policy")
    list_select_related = ("expiry_policy",)
    fields = ("date", "expires_at", "expiry_action", "expiry_policy", "why", "holds", "disposition")
    readonly_fields = fields
    ordering = ("expires_at", "id")
    show_full_result_count = False
    actions = ("delete_now",)

    def has_dispose_permission(self, request) -> bool:
        user = request.user
        return bool(user.is_superuser or getattr(user, "is_admin_role", False))

    @admin.action(
        description=_("Delete now (into the bin; refused for held mail)"), permissions=["dispose"]
    )
    def delete_now(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        try:
            n = purge_service.dispose_now(ids, reason="admin", actor=request.user)
        except hold_service.MessageOnHold as e:
            self.message_user(request, gettext("Nothing deleted: %(e)s") % {"e": e}, messages.ERROR)
            return
        self.message_user(
            request, gettext("%(n)s message(s) moved to the bin.") % {"n": n}, messages.SUCCESS
        )

    @admin.display(description=_("Why"))
    def why(self, obj) -> str:
        return service.explain(obj)["why"]

    @admin.display(description=_("Held by"))
    def holds(self, obj) -> str:
        return ", ".join(hold_service.held([obj.pk]).get(obj.pk, [])) or "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PurgeRun)
class PurgeRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "started",
        "dry_run",
        "worker",
        "counts",
        "held",
        "vacuumed",
        "files_deleted",
        "duration_ms",
    )
    list_filter = ("dry_run",)
    readonly_fields = (
        "started",
        "finished",
        "dry_run",
        "worker",
        "counts",
        "held",
        "vacuumed",
        "files_deleted",
        "duration_ms",
        "batches_ms",
        "errors",
    )

    def changelist_view(self, request, extra_context=None):
        plan = purge_service.preview_run()
        acts = ", ".join(
            f"policy {p}: " + ", ".join(f"{n} {a}" for a, n in sorted(by.items()))
            for p, by in sorted(plan["counts"].items())
        )
        self.message_user(
            request,
            f"The next run would act on: {acts or 'nothing'}; {plan['held']} due message(s) on hold; "
            f"{plan['vacuum']} bin entr(y/ies) to vacuum.",
            messages.INFO,
        )
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BinnedMessage)
class BinnedMessageAdmin(admin.ModelAdmin):
    list_display = ("email_id", "subject", "reason", "policy", "binned_at", "vacuum_after")
    list_filter = ("reason",)
    fields = ("email_id", "thread_id", "subject", "reason", "policy", "binned_at", "vacuum_after")
    readonly_fields = fields
    actions = ("restore",)

    @admin.display(description=_("Subject"))
    def subject(self, obj) -> str:
        return obj.payload["message"][0]["fields"].get("subject", "")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the vacuum removes entries (with their files)

    @admin.action(description=_("Restore the selected messages"))
    def restore(self, request, queryset) -> None:
        done = 0
        for entry in queryset:
            try:
                purge_service.restore(entry, **_audit(request))
                done += 1
            except purge_service.RestoreRejected as e:
                self.message_user(
                    request,
                    gettext("Message %(email_id)s: %(e)s") % {"email_id": entry.email_id, "e": e},
                    messages.ERROR,
                )
        self.message_user(
            request, gettext("%(done)s message(s) restored.") % {"done": done}, messages.SUCCESS
        )


class DecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=(("approve", "Approve disposal"), ("extend", "Extend"), ("relabel", "Relabel"))
    )
    justification_text = forms.CharField(
        widget=forms.Textarea, label="Justification", max_length=2000
    )
    extend_until = forms.DateTimeField(required=False, label="Extend to")
    relabel_to = forms.ModelChoiceField(
        RetentionPolicy.objects.all(), required=False, label="New policy"
    )

    class Meta:
        model = DispositionReview
        fields = ()


@admin.register(DispositionReview)
class DispositionReviewAdmin(admin.ModelAdmin):
    form = DecisionForm
    list_display = (
        "email_ref",
        "policy",
        "reviewer",
        "status",
        "decided_by",
        "decided_at",
        "created",
    )
    list_filter = ("status", "reviewer")
    readonly_fields = (
        "email_ref", "policy", "reviewer", "status", "decided_by", "decided_at",
        "justification", "extended_to", "new_policy",
    )  # fmt: skip

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status == DispositionReview.Status.PENDING:
            fields += ["decision", "justification_text", "extend_until", "relabel_to"]
        return fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # kept: proof of disposition

    def save_model(self, request, obj, form, change) -> None:
        if "decision" not in form.cleaned_data:
            return
        try:
            reviews.decide_review(
                obj,
                form.cleaned_data["decision"],
                justification=form.cleaned_data["justification_text"],
                extend_to=form.cleaned_data.get("extend_until"),
                new_policy=form.cleaned_data.get("relabel_to"),
                **_audit(request),
            )
        except (reviews.ReviewRejected, hold_service.MessageOnHold) as e:
            self.message_user(request, gettext("Not decided: %(e)s") % {"e": e}, messages.ERROR)


@admin.register(ExpiryJob)
class ExpiryJobAdmin(admin.ModelAdmin):
    list_display = ("id", "reason", "status", "progress", "changed", "created", "finished")
    list_filter = ("status",)
    readonly_fields = (
        "reason",
        "scope",
        "status",
        "total",
        "done",
        "changed",
        "created",
        "finished",
        "error",
    )

    @admin.display(description=_("Progress"))
    def progress(self, obj: ExpiryJob) -> str:
        if not obj.total:
            return "—"
        return f"{obj.done}/{obj.total} threads ({100 * obj.done // obj.total}%)"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
