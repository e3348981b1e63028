"""Categories: the admin-defined list (create, reorder, activate/deactivate), and the
categories of one stored message, edited on its change page. Every change goes through
capture.categories, which checks the names and writes the audit event."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from capture import categories as service
from capture.models import Category, EmailMessage
from governance.audit import client_address


def _audit(request) -> dict:
    return {"actor": request.user, "channel": "admin", "address": client_address(request)}


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ("name", "active", "order")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = ("name", "active", "order", "updated")
    list_editable = ()
    list_filter = ("active",)
    search_fields = ("name",)
    ordering = ("order", "name")
    actions = ("activate", "deactivate")

    def get_readonly_fields(self, request, obj=None):
        # A name is fixed once created (capture/categories.py says why).
        return ("name", "created", "updated") if obj is not None else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: old mail keeps the name

    def save_model(self, request, obj, form, change) -> None:
        try:
            if change:
                service.update_category(
                    obj,
                    active=form.cleaned_data["active"],
                    order=form.cleaned_data["order"],
                    **_audit(request),
                )
            else:
                created = service.create_category(
                    form.cleaned_data["name"],
                    active=form.cleaned_data["active"],
                    order=form.cleaned_data["order"],
                    **_audit(request),
                )
                obj.pk, obj.created, obj.updated = created.pk, created.created, created.updated
        except service.CategoryRejected as e:
            # The form's own uniqueness check runs first; this is a concurrent create.
            self.message_user(
                request, gettext("Not saved: %(detail)s") % {"detail": e.detail}, messages.ERROR
            )

    @admin.action(description=_("Activate the selected categories"))
    def activate(self, request, queryset) -> None:
        n = service.set_categories_active(queryset, True, **_audit(request))
        self.message_user(
            request, gettext("%(n)s categories activated.") % {"n": n}, messages.SUCCESS
        )

    @admin.action(description=_("Deactivate the selected categories (they stay on old mail)"))
    def deactivate(self, request, queryset) -> None:
        n = service.set_categories_active(queryset, False, **_audit(request))
        self.message_user(
            request, gettext("%(n)s categories deactivated.") % {"n": n}, messages.SUCCESS
        )


class EmailCategoriesForm(forms.ModelForm):
    """The message's categories: active ones can be added, inactive ones it has can stay."""

    category_names = forms.MultipleChoiceField(
        label="Categories", required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = EmailMessage
        fields = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        have = list(self.instance.categories or []) if self.instance.pk else []
        names = [c.name for c in Category.objects.filter(active=True)]
        names += [n for n in have if n not in names]
        self.fields["category_names"].choices = [(n, n) for n in names]
        self.fields["category_names"].initial = have


class EmailCategoriesAdminMixin:
    """On the email admin: save only the categories (everything else there is read-only)."""

    form = EmailCategoriesForm

    def has_change_permission(self, request, obj=None) -> bool:
        # The page's one editable field: the read-only big-table admin opens up for it.
        return admin.ModelAdmin.has_change_permission(self, request, obj)  # type: ignore[arg-type]

    def save_model(self, request, obj, form, change) -> None:
        if not change or "category_names" not in form.changed_data:
            return
        try:
            service.set_email_categories(
                obj, form.cleaned_data["category_names"], **_audit(request)
            )
        except service.CategoryRejected as e:
            self.message_user(
                request,
                gettext("Categories not saved: %(detail)s") % {"detail": e.detail},
                messages.ERROR,
            )  # type: ignore[attr-defined]
