"""Plain Django pages for signed-in users (the admin is the operators' UI).

`/me/` is every user's self-service page: capture addresses, capture settings (the
organisation's locked defaults shown, not editable), connected addresses and aliases (verified
by a mailed code), and personal never-log entries with the offer to remove stored mail. Each
form calls the same service as the API (governance/settings.py, crm/user_addresses.py,
governance/never_log.py), so the audit events are the same.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import get_language_from_request, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from capture.addresses import get_or_create_capture_address, rotate_capture_address
from capture.models import CaptureAddress
from crm import user_addresses
from crm.models import UserAddress
from crm.services import LanguageRejected, set_user_language
from governance import never_log
from governance.audit import client_address
from governance.models import ASSOCIATION_KINDS, NeverLogRule, SyncedMailVisibility
from governance.settings import SettingsRejected, effective_settings, update_user_settings

DEFAULT = ""
YES_NO = [(DEFAULT, _("Organisation default")), ("true", _("Yes")), ("false", _("No"))]


class SettingsForm(forms.Form):
    log_all = forms.ChoiceField(choices=YES_NO, required=False, label=_("Log all my mail"))
    track = forms.ChoiceField(choices=YES_NO, required=False, label=_("Track opens and clicks"))
    private_by_default = forms.ChoiceField(
        choices=YES_NO, required=False, label=_("New threads I capture start private")
    )
    follow_associations = forms.BooleanField(
        required=False, label=_("Associate with the organisation's default record kinds")
    )
    associations = forms.MultipleChoiceField(
        choices=[(k, k.capitalize()) for k in ASSOCIATION_KINDS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Or these record kinds"),
    )
    synced_mail_visibility = forms.ChoiceField(
        choices=[(DEFAULT, _("Organisation default")), *SyncedMailVisibility.choices],
        required=False,
        label=_("Who may see my synced mail"),
    )

    def changes(self) -> dict[str, Any]:
        """The user's choices as update_user_settings takes them, locked fields left out."""
        data = self.cleaned_data
        out: dict[str, Any] = {}
        for name in ("log_all", "track", "private_by_default"):
            if not self.fields[name].disabled:
                out[name] = {"true": True, "false": False}.get(data[name])
        if not self.fields["associations"].disabled:
            out["associations"] = None if data["follow_associations"] else data["associations"]
        if not self.fields["synced_mail_visibility"].disabled:
            out["synced_mail_visibility"] = data["synced_mail_visibility"] or None
        return out


def _settings_form(user, data=None) -> SettingsForm:
    current = effective_settings(user)

    def yes_no(choice: bool | None) -> str:
        return DEFAULT if choice is None else ("true" if choice else "false")

    form = SettingsForm(
        data,
        initial={
            "log_all": yes_no(current.log_all.choice),
            "track": yes_no(current.track.choice),
            "private_by_default": yes_no(current.private_by_default.choice),
            "follow_associations": current.associations.choice is None,
            "associations": list(current.associations.value),
            "synced_mail_visibility": current.synced_mail_visibility.choice or DEFAULT,
        },
    )
    for name in (
        "log_all",
        "track",
        "private_by_default",
        "associations",
        "synced_mail_visibility",
    ):
        if getattr(current, name).locked:
            form.fields[name].disabled = True
            form.fields[name].help_text = gettext("Set by your organisation for everyone.")
    form.fields["follow_associations"].disabled = current.associations.locked
    return form


class AddressForm(forms.Form):
    address = forms.CharField(max_length=254, label=_("Address"))
    kind = forms.ChoiceField(choices=UserAddress.Kind.choices, initial=UserAddress.Kind.ALIAS)


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        choices=[("", _("Follow my browser")), *settings.LANGUAGES],
        required=False,
        label=_("Language"),
    )


class NeverLogForm(forms.Form):
    kind = forms.ChoiceField(choices=NeverLogRule.Kind.choices)
    value = forms.CharField(max_length=254, label=_("Address or domain"))


@login_required(login_url="/admin/login/")
@require_http_methods(["GET", "POST"])
def me(request: HttpRequest) -> HttpResponse:
    """The user's settings page; every POST names its `action` and redirects back."""
    user = request.user
    audit = {"actor": user, "channel": "web", "client": client_address(request)}
    settings_form = address_form = never_log_form = language_form = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "rotate":
            addr = get_object_or_404(
                CaptureAddress, pk=request.POST.get("id"), user=user, active=True
            )
            rotate_capture_address(addr, user, channel="web", address=client_address(request))
            messages.success(
                request, gettext("Your capture address was rotated; the old one no longer works.")
            )
            return redirect("me")
        if action == "settings":
            settings_form = _settings_form(user, request.POST)
            if settings_form.is_valid():
                try:
                    update_user_settings(user, settings_form.changes(), **audit)
                except SettingsRejected as e:
                    for field, errors in e.errors.items():
                        settings_form.add_error(None, f"{field}: {' '.join(errors)}")
                else:
                    messages.success(request, gettext("Your settings were saved."))
                    return redirect("me")
        elif action == "language":
            language_form = LanguageForm(request.POST)
            if language_form.is_valid():
                try:
                    set_user_language(user, language_form.cleaned_data["language"], **audit)
                except LanguageRejected as e:
                    language_form.add_error("language", str(e))
                else:
                    translation.activate(user.language or get_language_from_request(request))
                    messages.success(request, gettext("Your language was saved."))
                    return redirect("me")
        elif action == "add_address":
            address_form = AddressForm(request.POST)
            if address_form.is_valid():
                try:
                    user_addresses.add_own_address(
                        user,
                        address_form.cleaned_data["address"],
                        address_form.cleaned_data["kind"],
                        **audit,
                    )
                except user_addresses.OwnAddressError as e:
                    address_form.add_error("address", str(e))
                else:
                    messages.success(
                        request, gettext("We mailed a code to the address: enter it below.")
                    )
                    return redirect("me")
        elif action == "verify_address":
            row = get_object_or_404(UserAddress, pk=request.POST.get("id"), user=user)
            try:
                user_addresses.verify_own_address(row, request.POST.get("code", ""), **audit)
            except user_addresses.OwnAddressError as e:
                messages.error(request, str(e))
            else:
                messages.success(
                    request, gettext("The address is verified and now counts as yours.")
                )
            return redirect("me")
        elif action == "remove_address":
            row = get_object_or_404(UserAddress, pk=request.POST.get("id"), user=user)
            user_addresses.remove_own_address(row, **audit)
            messages.success(request, gettext("The address was removed."))
            return redirect("me")
        elif action == "add_never_log":
            never_log_form = NeverLogForm(request.POST)
            if never_log_form.is_valid():
                try:
                    rule = never_log.add_never_log_rule(
                        never_log_form.cleaned_data["kind"],
                        never_log_form.cleaned_data["value"],
                        user=user,
                        **audit,
                    )
                except never_log.NeverLogRejected as e:
                    never_log_form.add_error("value", str(e))
                else:
                    return _offer_removal(request, rule, audit)
        elif action == "remove_never_log":
            rule = get_object_or_404(NeverLogRule, pk=request.POST.get("id"), user=user)
            never_log.delete_never_log_rule(rule, **audit)
            messages.success(request, gettext("The never-log entry was removed."))
            return redirect("me")
        elif action == "preview_removal":
            rule = get_object_or_404(NeverLogRule, pk=request.POST.get("id"), user=user)
            return _offer_removal(request, rule, audit)
        elif action == "remove_stored":
            rule = get_object_or_404(NeverLogRule, pk=request.POST.get("id"), user=user)
            never_log.queue_never_log_removal(rule, **audit)
            messages.success(request, gettext("Your stored mail from it is being removed."))
            return redirect("me")
        else:
            return redirect("me")
    get_or_create_capture_address(user, actor=user, channel="web", address=client_address(request))
    context = {
        "capture_addresses": CaptureAddress.objects.filter(user=user, active=True).order_by(
            "kind", "id"
        ),
        "own_addresses": sorted(user.own_addresses()),
        "login_email": user.email,
        "aliases": user.addresses.order_by("address"),
        "settings": effective_settings(user),
        "settings_form": settings_form or _settings_form(user),
        "address_form": address_form or AddressForm(),
        "never_log_form": never_log_form or NeverLogForm(),
        "language_form": language_form or LanguageForm(initial={"language": user.language}),
        "never_log_rules": NeverLogRule.objects.filter(user=user).order_by("kind", "value"),
    }
    return render(request, "capture/me.html", context)


def _offer_removal(request: HttpRequest, rule: NeverLogRule, audit: dict[str, Any]) -> HttpResponse:
    """The confirmation page: how much stored mail the rule matches, and a button to remove it."""
    with transaction.atomic():
        counts = never_log.preview_never_log_removal(rule, **audit)
    return render(request, "capture/me_removal.html", {"rule": rule, "counts": counts})
