"""Policy history (django-simple-history, config/portal/history.py) shown on change pages."""

from __future__ import annotations

import pytest
from django import forms
from django.urls import reverse

from capture.models import Category, LinkRule
from config.portal.history import POLICY_HISTORY_MODELS, tracked_models
from governance.consent import record_consent
from governance.models import ConsentRecord, NeverLogRule, OrgSettings
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def form_data(form) -> dict:
    """What a browser would post back for this form, unchanged."""
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.NullBooleanField):
            data[name] = {None: "unknown", True: "true", False: "false"}[value]
        elif isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is None:
            data[name] = ""
        else:
            data[name] = value
    return data


def change_page(client, obj) -> str:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    resp = client.get(url)
    assert resp.status_code == 200
    return resp.content.decode()


def history_panel(html: str) -> str:
    assert 'id="policy-history"' in html
    return html.split('id="policy-history"', 1)[1].split("</fieldset>", 1)[0]


def test_every_listed_policy_model_that_exists_is_tracked():
    labels = {m._meta.label for m in tracked_models()}
    assert {
        "governance.OrgSettings",
        "governance.UserSettings",
        "governance.NeverLogRule",
    } <= labels
    assert {"capture.LinkRule", "capture.Category"} <= labels
    assert labels <= set(POLICY_HISTORY_MODELS)
    for model in tracked_models():
        assert hasattr(model, "policy_history")


def test_org_settings_changed_in_the_admin_show_who_what_from_to_when(admin_client, superuser):
    settings_row = OrgSettings.load()
    url = reverse("admin:governance_orgsettings_change", args=[settings_row.pk])
    form = admin_client.get(url).context["adminform"].form
    data = form_data(form)
    data["company_name"] = "Acme Sales"
    data["thread_window_days"] = 14
    resp = admin_client.post(url, data)
    assert resp.status_code == 302, resp.context["adminform"].form.errors if resp.context else resp
    panel = history_panel(change_page(admin_client, OrgSettings.load()))
    assert "boss" in panel
    assert "Mailwarden demo → Acme Sales" in panel
    assert "30 → 14" in panel
    record = OrgSettings.load().policy_history.first()
    assert record.history_user == superuser and record.history_type == "~"


def test_rules_and_categories_keep_their_history(admin_client):
    rule = NeverLogRule.objects.create(kind="domain", value="secret.example", note="first")
    rule.note = "second"
    rule.save()
    panel = history_panel(change_page(admin_client, rule))
    assert "first → second" in panel and "created" in panel
    link_rule = LinkRule.objects.create(kind="deal", strategy="single_open", description="a")
    link_rule.enabled = False
    link_rule.save()
    assert "True → False" in history_panel(change_page(admin_client, link_rule))
    category = Category.objects.create(name="Offers")
    category.name = "Quotes"
    category.save()
    assert "Offers → Quotes" in history_panel(change_page(admin_client, category))


def test_deleted_rules_keep_their_history():
    rule = NeverLogRule.objects.create(kind="domain", value="gone.example")
    pk = rule.pk
    rule.delete()
    kinds = list(NeverLogRule.policy_history.filter(id=pk).values_list("history_type", flat=True))
    assert sorted(kinds) == ["+", "-"]


def test_history_is_hidden_from_who_may_not_view_the_model(client):
    rule = NeverLogRule.objects.create(kind="domain", value="x.example", note="n")
    from config.portal.policy_history import history_rows

    assert history_rows(rule, make_user(is_staff=True)) is None


def test_consent_history_is_the_append_only_rows(admin_client, superuser):
    contact = make_contact(emails=("c@customer.example",))
    first = record_consent(
        contact.pk, basis="consent", source="web form", actor=superuser, channel="admin"
    )
    record_consent(
        contact.pk,
        basis="consent",
        action="withdrawn",
        source="phone call",
        actor=superuser,
        channel="admin",
    )
    panel = history_panel(change_page(admin_client, ConsentRecord.objects.get(pk=first.pk)))
    assert "web form" in panel and "phone call" in panel and "Withdrawn" in panel


def test_a_change_through_the_api_is_in_the_history_with_its_user(admin_client):
    from rest_framework.test import APIClient

    from governance.models import UserSettings

    user = make_user(username="member1")
    client = APIClient()
    client.force_login(user)
    resp = client.patch("/api/v1/me/settings/", {"log_all": True}, format="json")
    assert resp.status_code == 200, resp.content
    row = UserSettings.objects.get(user=user)
    record = row.policy_history.first()
    assert record.history_user == user
    resp = client.patch("/api/v1/me/settings/", {"log_all": False}, format="json")
    assert resp.status_code == 200, resp.content
    panel = history_panel(change_page(admin_client, row))
    assert "member1" in panel and "True → False" in panel
