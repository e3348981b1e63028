"""Admin pages of the outbound webhooks: subscriptions (create, change, enable/disable,
rotate the secret), the delivery log with every attempt (response code, latency), replay, and
a notice on these pages while a subscription is disabled after repeated failures.

Imported by governance/admin.py; every write goes through governance/outbound/subscriptions.py.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import ScaleAdminMixin
from governance.audit import client_address
from governance.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from governance.outbound import subscriptions as service
from governance.outbound.events import EVENT_TYPES


def _audit(request: HttpRequest) -> dict:
    return {"actor": request.user, "channel": "admin", "address": client_address(request)}


def failure_notices(request: HttpRequest) -> None:
    """A warning per subscription disabled after repeated failures (until re-enabled)."""
    for sub in WebhookSubscription.objects.filter(
        enabled=False, disabled_reason=WebhookSubscription.DisabledReason.FAILURES
    ).order_by("pk"):
        url = reverse("admin:governance_webhooksubscription_change", args=[sub.pk])
        messages.warning(
            request,
            format_html(
                'Webhook subscription <a href="{}">{}</a> was disabled on {} after {} '
                "consecutive failed deliveries; its events wait. Enable it when the receiver "
                "is back.",
                url,
                sub,
                sub.disabled_at.strftime("%Y-%m-%d %H:%M") if sub.disabled_at else "?",
                sub.consecutive_failures,
            ),
        )


class AdminOnly:
    """Webhooks send data out of the system: admins (and superusers) only."""

    def _allowed(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and getattr(user, "is_admin_role", False))

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)


class WebhookSubscriptionForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t.name, f"{t.name}: {t.description}") for t in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )
    url = forms.CharField(max_length=2000, widget=forms.TextInput(attrs={"size": 80}))

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "event_types", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if self.instance.pk and url == self.instance.url:
            return url
        try:
            return service.clean_url(url)
        except service.WebhookRejected as e:
            raise forms.ValidationError(e.errors["url"]) from None

    def clean_event_types(self) -> list[str]:
        try:
            return service.clean_event_types(self.cleaned_data["event_types"])
        except service.WebhookRejected as e:
            raise forms.ValidationError(e.errors["event_types"]) from None


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(AdminOnly, admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = [
        "name",
        "url",
        "enabled",
        "disabled_reason",
        "event_list",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "deliveries_link",
    ]
    list_filter = ["enabled", "disabled_reason"]
    search_fields = ["name", "url"]
    list_select_related = ()
    readonly_fields = [
        "consecutive_failures",
        "disabled_reason",
        "disabled_at",
        "last_success_at",
        "last_failure_at",
        "previous_secret_expires_at",
        "created",
        "updated",
    ]
    actions = ["enable", "disable", "rotate"]

    @admin.display(description=_("events"))
    def event_list(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.event_types)

    @admin.display(description=_("deliveries"))
    def deliveries_link(self, obj: WebhookSubscription) -> str:
        url = reverse("admin:governance_webhookdelivery_changelist")
        return format_html('<a href="{}?subscription__id__exact={}">log</a>', url, obj.pk)

    def changelist_view(self, request, extra_context=None):
        failure_notices(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            failure_notices(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        if not change:
            created, secret = service.create_subscription(
                name=data["name"],
                url=data["url"],
                event_types=data["event_types"],
                enabled=data.get("enabled", True),
                created_by=request.user,
                **_audit(request),
            )
            obj.pk = created.pk
            obj._state.adding = False
            request._webhook_secret = secret  # shown once by response_add
            return
        original = WebhookSubscription.objects.get(pk=obj.pk)
        changes = {f: data[f] for f in form.changed_data if f in service.EDITABLE}
        try:
            service.update_subscription(original, changes, **_audit(request))
        except service.WebhookRejected as e:  # the form checked already; a race at most
            self.message_user(request, str(e), messages.ERROR)

    def save_related(self, request, form, formsets, change) -> None:
        pass  # no relations; the service saved everything

    def response_add(self, request, obj, post_url_continue=None) -> HttpResponse:
        secret = getattr(request, "_webhook_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        return self._secret_page(request, obj, secret, rotated=False)

    def _secret_page(self, request, obj, secret: str, *, rotated: bool) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "subscription": obj,
            "secret": secret,
            "rotated": rotated,
            "change_url": reverse("admin:governance_webhooksubscription_change", args=[obj.pk]),
            "opts": self.model._meta,
            "title": "Signing secret",
        }
        return TemplateResponse(
            request, "admin/governance/webhooksubscription/secret.html", context
        )

    def delete_model(self, request, obj) -> None:
        service.delete_subscription(obj, **_audit(request))

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            service.delete_subscription(obj, **_audit(request))

    @admin.action(description=_("Enable (resets the failure count; waiting events go out)"))
    def enable(self, request, queryset) -> None:
        n = service.set_enabled(queryset, True, **_audit(request))
        self.message_user(request, gettext("Enabled %(n)s subscription(s).") % {"n": n})

    @admin.action(description=_("Disable"))
    def disable(self, request, queryset) -> None:
        n = service.set_enabled(queryset, False, **_audit(request))
        self.message_user(request, gettext("Disabled %(n)s subscription(s).") % {"n": n})

    @admin.action(description=_("Rotate the signing secret (one subscription)"))
    def rotate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(
                request, gettext("Choose exactly one subscription."), messages.WARNING
            )
            return None
        obj = queryset.get()
        secret = service.rotate_secret(obj, **_audit(request))
        return self._secret_page(request, obj, secret, rotated=True)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = [
        "number",
        "created",
        "destination",
        "response_code",
        "latency_ms",
        "error",
        "response_excerpt",
    ]
    readonly_fields = fields
    ordering = ["number"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ScaleAdminMixin, AdminOnly, admin.ModelAdmin):
    """The delivery log (read-only) with replay."""

    list_display = [
        "id",
        "created",
        "subscription",
        "event_type",
        "message_id",
        "status",
        "attempts",
        "response_code",
        "latency_ms",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "event_type", "subscription"]
    list_select_related = ("subscription",)
    search_fields = ["=message_id"]
    show_full_result_count = False
    ordering = ["-id"]
    list_per_page = 100
    inlines = [WebhookAttemptInline]
    actions = ["replay"]
    fields = [
        "subscription",
        "event_type",
        "message_id",
        "status",
        "attempts",
        "created",
        "next_attempt_at",
        "last_attempt_at",
        "delivered_at",
        "response_code",
        "latency_ms",
        "last_error",
        "replay_of",
        "body",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        failure_notices(request)
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Replay (send again, same webhook-id)"))
    def replay(self, request, queryset) -> None:
        count = 0
        for delivery in queryset.order_by("id"):
            service.replay_delivery(delivery, **_audit(request))
            count += 1
        self.message_user(request, gettext("Queued %(count)s replay(s).") % {"count": count})
