"""The governance admin pages of this issue: org defaults with their enforce switches, users'
settings, and the never-log "preview and remove stored mail" confirmation page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from capture.models import EmailMessage, RawMessage
from governance.models import AuditEvent, NeverLogRule, OrgSettings, UserSettings
from tests.capture.pipeline.helpers import capture, make_mail
from tests.factories import make_never_log_rule, make_user

pytestmark = pytest.mark.django_db

RULES = "/admin/governance/neverlogrule/"


def stored_from(sender: str) -> EmailMessage:
    user = make_user()
    _, outcome = capture(
        make_mail(from_=sender, to="sam@mailwarden-demo.com", message_id=f"<{sender}>"),
        RawMessage.Channel.IMAP,
        user_id=user.pk,
    )
    return EmailMessage.objects.get(pk=outcome.email_id)


def test_the_admin_pages_of_the_settings_open(admin_client):
    OrgSettings.load()
    UserSettings.objects.create(user=make_user(), track=True)
    for url in (
        "/admin/governance/orgsettings/",
        "/admin/governance/orgsettings/1/change/",
        "/admin/governance/usersettings/",
        RULES,
    ):
        assert admin_client.get(url).status_code == 200, url


def test_the_action_shows_counts_and_the_confirmation_queues_the_removal(
    admin_client, django_capture_on_commit_callbacks
):
    stored_from("spam@pest.example")
    keep = stored_from("jane@acme.example")
    rule = make_never_log_rule("pest.example")
    page = admin_client.post(
        RULES, {"action": "preview_and_remove_stored", "_selected_action": [rule.pk]}, follow=True
    )
    assert page.status_code == 200
    assert "1 message" in page.content.decode()
    assert AuditEvent.objects.filter(action="never_log.removal_previewed").exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(f"{RULES}{rule.pk}/remove-stored/")
    assert done.status_code == 302
    assert list(EmailMessage.objects.values_list("pk", flat=True)) == [keep.pk]


def test_adding_a_rule_in_the_admin_leads_to_the_removal_offer(admin_client):
    response = admin_client.post(f"{RULES}add/", {"kind": "domain", "value": "Pest.Example"})
    rule = NeverLogRule.objects.get()
    assert rule.value == "pest.example"
    assert response["Location"] == f"{RULES}{rule.pk}/remove-stored/"


def test_a_compliance_officer_does_not_see_personal_rules_in_the_admin(client):
    make_never_log_rule("private.example", user=make_user())
    make_never_log_rule("org.example")
    officer = make_user(is_staff=True, role="compliance", is_superuser=False)
    officer.user_permissions.add(Permission.objects.get(codename="view_neverlogrule"))
    client.force_login(officer)
    response = client.get(RULES)
    assert response.status_code == 200
    page = response.content.decode()
    assert "org.example" in page
    assert "private.example" not in page
