"""The /me/ page: the same settings, addresses and never-log entries as the API, through
plain forms with CSRF, audited by the same services."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from capture.models import EmailMessage, RawMessage
from crm.models import UserAddress
from governance.models import AuditEvent, NeverLogRule, UserSettings
from tests.capture.pipeline.helpers import capture, make_mail
from tests.factories import make_user, set_org_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(client):
    user = make_user(email="ann@mailwarden-demo.com")
    client.force_login(user)
    return user


def test_the_page_saves_settings_through_the_audited_service(client, user):
    response = client.post(
        "/me/",
        {
            "action": "settings",
            "log_all": "true",
            "track": "",
            "associations": ["deal"],
            "synced_mail_visibility": "subject",
        },
    )
    assert response.status_code == 302
    choices = UserSettings.objects.get(user=user)
    assert (choices.log_all, choices.track, choices.associations) == (True, None, ["deal"])
    assert choices.synced_mail_visibility == "subject"
    event = AuditEvent.objects.get(action="settings.changed")
    assert event.channel == "web"
    assert event.detail["fields"] == ["associations", "log_all", "synced_mail_visibility"]


def test_a_locked_setting_is_shown_disabled_and_a_forged_post_does_not_change_it(client, user):
    set_org_settings(enforce_track=True, track_by_default=True)
    page = client.get("/me/").content.decode()
    assert re.search(r'<select name="track"[^>]*disabled', page)
    client.post("/me/", {"action": "settings", "track": "false", "follow_associations": "on"})
    assert UserSettings.objects.filter(user=user).values_list("track", flat=True).first() is None


def test_the_page_needs_a_csrf_token(user):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/me/", {"action": "settings", "log_all": "true"}).status_code == 403


def test_an_address_is_added_and_verified_with_the_mailed_code_on_the_page(
    client, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/me/", {"action": "add_address", "address": "ann@home.example", "kind": "alias"}
        )
    row = UserAddress.objects.get(address="ann@home.example")
    assert row.verified_at is None
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    client.post("/me/", {"action": "verify_address", "id": row.pk, "code": code})
    row.refresh_from_db()
    assert row.verified_at is not None
    assert "ann@home.example" in user.own_addresses()


def test_a_personal_never_log_entry_offers_removal_with_counts_then_removes(
    client, user, django_capture_on_commit_callbacks
):
    _, outcome = capture(
        make_mail(from_="dr@clinic.example", to="ann@mailwarden-demo.com", message_id="<c@x>"),
        RawMessage.Channel.IMAP,
        user_id=user.pk,
    )
    assert outcome.status == RawMessage.Status.PROCESSED
    page = client.post(
        "/me/", {"action": "add_never_log", "kind": "domain", "value": "clinic.example"}
    )
    assert page.status_code == 200
    assert "1 message" in page.content.decode()
    rule = NeverLogRule.objects.get(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/me/", {"action": "remove_stored", "id": rule.pk})
    assert not EmailMessage.objects.exists()


def test_another_users_entries_and_addresses_are_out_of_reach(client, user):
    other = make_user()
    rule = NeverLogRule.objects.create(kind="domain", value="x.example", user=other)
    row = UserAddress.objects.create(user=other, address="other@home.example")
    assert client.post("/me/", {"action": "remove_never_log", "id": rule.pk}).status_code == 404
    assert client.post("/me/", {"action": "remove_stored", "id": rule.pk}).status_code == 404
    assert client.post("/me/", {"action": "remove_address", "id": row.pk}).status_code == 404
    assert "x.example" not in client.get("/me/").content.decode()
