"""Data-subject requests in the admin: make one (kind + address), follow its state and counts,
see what a legal hold retained and why, and download an access archive (the requester, once).
Compliance officers and admins only; everything goes through capture.dsr (audited there)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from capture import dsr
from capture.models import DataSubjectRequest
from governance.audit import client_address


class NewRequestForm(forms.ModelForm):
    address = forms.EmailField(max_length=254)

    class Meta:
        model = DataSubjectRequest
        fields = ("kind", "address", "note")


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "kind",
        "state",
        "progress",
        "requested_by",
        "created",
        "completed_at",
    )
    list_filter = ("kind", "state")
    search_fields = ("address_hash", "note")
    ordering = ("-created",)
    list_select_related = ("requested_by",)
    show_full_result_count = False
    readonly_fields = (
        "kind", "address", "address_hash", "note", "state", "progress", "requested_by",
        "created", "completed_at", "counts_table", "retained_table", "error", "archive",
    )  # fmt: skip

    def _allowed(self, request) -> bool:
        return bool(request.user.is_active and getattr(request.user, "is_compliance", False))

    def has_module_permission(self, request) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request) -> bool:
        return self._allowed(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = NewRequestForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ("kind", "address", "note") if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        req, password = dsr.create_request(
            form.cleaned_data["kind"],
            form.cleaned_data["address"],
            requested_by=request.user,
            note=form.cleaned_data.get("note", ""),
            channel="admin",
            client=client_address(request),
        )
        obj.pk = req.pk
        if password:
            messages.warning(
                request,
                f"Password of the access archive (shown this once; give it to the data subject "
                f"by another channel than the archive): {password}",
            )

    @admin.display(description=_("Counts"))
    def counts_table(self, obj: DataSubjectRequest):
        if not obj.counts:
            return "—"
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", sorted(obj.counts.items()))
        return format_html("<table>{}</table>", rows)

    @admin.display(description=_("Retained (legal holds)"))
    def retained_table(self, obj: DataSubjectRequest):
        if not obj.retained:
            return "Nothing retained."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r["count"], r["what"], r["hold"], r["reason"]) for r in obj.retained),
        )
        return format_html(
            "<table><tr><th>Count</th><th>What</th><th>Hold</th><th>Reason</th></tr>{}</table>",
            rows,
        )

    @admin.display(description=_("Archive"))
    def archive(self, obj: DataSubjectRequest):
        if obj.kind != DataSubjectRequest.Kind.ACCESS:
            return "—"
        if obj.archive_downloaded_at:
            return f"Downloaded {obj.archive_downloaded_at:%Y-%m-%d %H:%M}"
        if not obj.archive_path:
            return "Not ready" if obj.state != DataSubjectRequest.State.COMPLETED else "Expired"
        url = reverse("admin:capture_datasubjectrequest_archive", args=[obj.pk])
        return format_html(
            '<a href="{}">Download ({} bytes, once, until {})</a>',
            url,
            obj.archive_size,
            f"{obj.archive_expires_at:%Y-%m-%d %H:%M}",
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/archive/",
                self.admin_site.admin_view(self.archive_view),
                name="capture_datasubjectrequest_archive",
            ),
            *super().get_urls(),
        ]

    def archive_view(self, request, pk: int):
        if not self._allowed(request):
            raise PermissionDenied
        req = DataSubjectRequest.objects.filter(pk=pk).first()
        back = reverse("admin:capture_datasubjectrequest_change", args=[pk])
        if req is None:
            return HttpResponseRedirect(reverse("admin:capture_datasubjectrequest_changelist"))
        try:
            data = dsr.take_archive(
                req, request.user, channel="admin", client=client_address(request)
            )
        except (PermissionError, dsr.ArchiveUnavailable) as e:
            messages.error(request, str(e))
            return HttpResponseRedirect(back)
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="subject-access-{pk}.zip"'
        return response
