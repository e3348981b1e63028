from __future__ import annotations

import pytest

from capture.imap.credentials import get_secret, set_secret
from capture.models import MailboxConnection, MailboxFolder, RawMessage
from governance.models import AuditEvent
from tests.capture.imap.conftest import make_message
from tests.factories import make_user

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/capture/mailboxconnection/"


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def make_saved_mailbox(**fields) -> MailboxConnection:
    defaults = {"owner": make_user(), "host": "imap.example.com", "username": "seller"}
    mailbox = MailboxConnection(**{**defaults, **fields})
    set_secret(mailbox, "stored-pa55")
    mailbox.save()
    return mailbox


def test_adding_a_mailbox_in_admin_encrypts_the_password(admin_client):
    owner = make_user()
    response = admin_client.post(
        f"{CHANGELIST}add/",
        {
            "owner": owner.pk, "name": "Sales", "enabled": "on", "visibility": "everything",
            "host": "imap.example.com", "port": 993, "security": "tls", "username": "sales",
            "auth": "password", "password": "admin-typed-pa55", "folders": "INBOX\nClients, 2026",
            "excluded_folders": "", "sync_window_days": 30, "interval_minutes": 5,
            "folder_states-TOTAL_FORMS": 0, "folder_states-INITIAL_FORMS": 0,
        },
    )  # fmt: skip

    assert response.status_code == 302, response.content[:2000]
    mailbox = MailboxConnection.objects.get(name="Sales")
    assert get_secret(mailbox) == "admin-typed-pa55"
    assert mailbox.folders == ["INBOX", "Clients, 2026"]
    assert AuditEvent.objects.filter(action="mailbox.created", channel="admin").exists()


def test_the_change_page_never_shows_the_password_and_shows_status(admin_client):
    mailbox = make_saved_mailbox(
        last_error="connection refused", paused_reason="Paused after 3 failed logins"
    )
    MailboxFolder.objects.create(
        mailbox=mailbox, name="INBOX", uidvalidity=7, last_uid=42, skipped=1,
        skipped_log=[{"uid": 40, "reason": "too_large", "size": 99_000_000, "at": "2026-11-22T10:00"}],
    )  # fmt: skip

    page = admin_client.get(f"{CHANGELIST}{mailbox.pk}/change/").content.decode()

    assert "stored-pa55" not in page
    assert mailbox.secret_encrypted not in page
    assert "connection refused" in page
    assert "Paused after 3 failed logins" in page
    assert "too_large" in page
    assert "42" in page


def test_saving_without_a_new_password_keeps_the_old_one(admin_client):
    mailbox = make_saved_mailbox()
    response = admin_client.post(
        f"{CHANGELIST}{mailbox.pk}/change/",
        {
            "owner": mailbox.owner_id, "name": "Renamed", "enabled": "on", "visibility": "subject",
            "host": mailbox.host, "port": 993, "security": "tls", "username": "seller",
            "auth": "password", "password": "", "folders": "", "excluded_folders": "Private",
            "sync_window_days": 30, "interval_minutes": 5,
            "folder_states-TOTAL_FORMS": 0, "folder_states-INITIAL_FORMS": 0,
        },
    )  # fmt: skip

    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.name, mailbox.excluded_folders) == ("Renamed", ["Private"])
    assert get_secret(mailbox) == "stored-pa55"


def test_the_changelist_filters_by_state(admin_client):
    make_saved_mailbox(name="healthy", last_sync_at="2026-11-22T10:00Z")
    make_saved_mailbox(name="stuck", paused_reason="Paused by an admin.")

    page = admin_client.get(CHANGELIST, {"state": "paused"}).content.decode()

    assert "stuck" in page
    assert "healthy" not in page


def test_pause_and_resume_actions(admin_client):
    mailbox = make_saved_mailbox(consecutive_auth_failures=3)

    admin_client.post(CHANGELIST, {"action": "pause", "_selected_action": [mailbox.pk]})
    mailbox.refresh_from_db()
    assert mailbox.paused_reason == "Paused by an admin."

    admin_client.post(CHANGELIST, {"action": "resume", "_selected_action": [mailbox.pk]})
    mailbox.refresh_from_db()
    assert (mailbox.paused_reason, mailbox.consecutive_auth_failures) == ("", 0)


def test_sync_now_action_runs_the_sync(
    admin_client, dovecot, make_mailbox, django_capture_on_commit_callbacks
):
    mailbox = make_mailbox()
    dovecot.append(mailbox.username, "INBOX", [make_message()])

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(CHANGELIST, {"action": "sync_now", "_selected_action": [mailbox.pk]})

    assert RawMessage.objects.filter(mailbox=mailbox).count() == 1
