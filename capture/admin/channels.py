"""Capture addresses (rotate, revoke, create shared ones) and the SMTP rate/loop events.

Creating and changing addresses goes through capture.addresses so every change is audited;
the token is never edited by hand.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture import addresses as service
from capture.models import CaptureAddress, SmtpRateEvent
from governance.audit import client_address


@admin.register(CaptureAddress)
class CaptureAddressAdmin(admin.ModelAdmin):
    list_display = ["address", "user", "kind", "label", "active", "created", "revoked_at"]
    list_select_related = ("user",)
    list_filter = ["kind", "active"]
    search_fields = ["=token", "label", "user__username", "user__email"]
    autocomplete_fields = ["user"]
    fields = ["user", "kind", "label", "address", "active", "revoked_at", "created"]
    readonly_fields = ["address", "active", "revoked_at", "created"]
    actions = ["rotate_addresses", "revoke_addresses"]

    def get_readonly_fields(self, request, obj=None):
        # Owner and kind are fixed once issued: rotate or revoke instead.
        if obj is not None:
            return [*self.readonly_fields, "user", "kind"]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: captured mail keeps pointing at the address row

    def save_model(self, request, obj, form, change) -> None:
        audit = {"actor": request.user, "channel": "admin", "address": client_address(request)}
        if change:
            obj.save(update_fields=["label", "updated"])
            return
        created = service.create_capture_address(obj.user, kind=obj.kind, label=obj.label, **audit)
        obj.pk = created.pk
        obj.token = created.token
        obj.created = created.created

    @admin.action(description=_("Rotate (revoke and issue a new address)"), permissions=["change"])
    def rotate_addresses(self, request, queryset) -> None:
        audit = {"channel": "admin", "address": client_address(request)}
        rotated = 0
        for addr in queryset.filter(active=True):
            service.rotate_capture_address(addr, request.user, **audit)
            rotated += 1
        self.message_user(
            request,
            gettext("Rotated %(rotated)s address(es).") % {"rotated": rotated},
            messages.SUCCESS,
        )

    @admin.action(description=_("Revoke (mail to it is refused)"), permissions=["change"])
    def revoke_addresses(self, request, queryset) -> None:
        audit = {"channel": "admin", "address": client_address(request)}
        revoked = 0
        for addr in queryset.filter(active=True):
            service.revoke_capture_address(addr, request.user, **audit)
            revoked += 1
        self.message_user(
            request,
            gettext("Revoked %(revoked)s address(es).") % {"revoked": revoked},
            messages.SUCCESS,
        )


@admin.register(SmtpRateEvent)
class SmtpRateEventAdmin(admin.ModelAdmin):
    """Read-only: what the SMTP listener refused for rate or loop reasons, with counts."""

    list_display = ["updated", "reason", "capture_address", "sender", "count", "created"]
    list_select_related = ("capture_address", "capture_address__user")
    list_filter = ["reason", "created"]
    search_fields = ["sender", "capture_address__user__username", "=capture_address__token"]
    raw_id_fields = ["capture_address"]
    date_hierarchy = "created"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser
