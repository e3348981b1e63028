from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from capture.imap.credentials import get_secret
from capture.models import MailboxConnection, RawMessage
from crm.models import ApiToken, User
from governance.models import AuditEvent
from tests.capture.imap.conftest import make_message
from tests.factories import make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/mailboxes/"


def client_for(user: User, scopes=("capture:read", "capture:write")) -> APIClient:
    _, key = ApiToken.issue(user=user, name="test", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def new_mailbox(client: APIClient, **fields):
    body = {"host": "imap.example.com", "username": "seller@example.com", "secret": "pa55-word!"}
    body.update(fields)
    return client.post(URL, body, format="json")


def test_a_user_connects_a_mailbox_and_the_secret_is_stored_encrypted_and_never_returned():
    user = make_user()
    response = new_mailbox(client_for(user), folders=["INBOX", "Projects"], sync_window_days=14)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert "secret" not in body and "secret_encrypted" not in body
    assert body["has_secret"] is True
    assert body["owner"] == user.pk
    mailbox = MailboxConnection.objects.get(pk=body["id"])
    assert "pa55-word!" not in mailbox.secret_encrypted
    assert get_secret(mailbox) == "pa55-word!"
    assert mailbox.folders == ["INBOX", "Projects"]
    event = AuditEvent.objects.get(action="mailbox.created", object_id=str(mailbox.pk))
    assert "pa55-word!" not in str(event.detail)
    assert "pa55-word!" not in str(client_for(user).get(f"{URL}{mailbox.pk}/").content)


def test_a_mailbox_without_a_secret_is_refused():
    response = new_mailbox(client_for(make_user()), secret="")
    assert response.status_code == 400
    assert "secret" in str(response.json())
    assert not MailboxConnection.objects.exists()


def test_updating_the_secret_re_encrypts_it_and_other_fields_stay():
    user = make_user()
    client = client_for(user)
    mailbox_id = new_mailbox(client).json()["id"]

    response = client.patch(f"{URL}{mailbox_id}/", {"secret": "new-token"}, format="json")

    assert response.status_code == 200
    mailbox = MailboxConnection.objects.get(pk=mailbox_id)
    assert get_secret(mailbox) == "new-token"
    assert mailbox.host == "imap.example.com"


def test_members_see_only_their_own_mailboxes_and_admins_see_all():
    alice, bob = make_user(), make_user()
    admin = make_user(role=User.Role.ADMIN)
    a_id = new_mailbox(client_for(alice)).json()["id"]
    b_id = new_mailbox(client_for(bob)).json()["id"]

    alice_ids = [m["id"] for m in client_for(alice).get(URL).json()["results"]]
    admin_ids = [m["id"] for m in client_for(admin).get(URL).json()["results"]]

    assert alice_ids == [a_id]
    assert set(admin_ids) == {a_id, b_id}
    assert client_for(alice).get(f"{URL}{b_id}/").status_code == 404


def test_a_member_cannot_create_a_mailbox_for_someone_else_but_an_admin_can():
    alice, bob = make_user(), make_user()
    admin = make_user(role=User.Role.ADMIN)

    assert new_mailbox(client_for(alice), owner=bob.pk).status_code == 400
    response = new_mailbox(client_for(admin), owner=bob.pk)
    assert response.status_code == 201
    assert response.json()["owner"] == bob.pk


def test_writing_needs_the_capture_write_scope():
    user = make_user()
    response = new_mailbox(client_for(user, scopes=("capture:read",)))
    assert response.status_code == 403


def test_status_fields_are_read_only():
    user = make_user()
    client = client_for(user)
    mailbox_id = new_mailbox(client).json()["id"]

    client.patch(f"{URL}{mailbox_id}/", {"paused_reason": "x", "last_error": "y"}, format="json")

    mailbox = MailboxConnection.objects.get(pk=mailbox_id)
    assert (mailbox.paused_reason, mailbox.last_error) == ("", "")


def test_resume_clears_a_pause_and_the_owner_sees_the_reason_before(settings):
    user = make_user()
    client = client_for(user)
    mailbox_id = new_mailbox(client).json()["id"]
    MailboxConnection.objects.filter(pk=mailbox_id).update(
        paused_reason="Paused after 3 failed logins in a row", consecutive_auth_failures=3
    )
    assert "failed logins" in client.get(f"{URL}{mailbox_id}/").json()["paused_reason"]
    assert client.post(f"{URL}{mailbox_id}/sync/").status_code == 409

    response = client.post(f"{URL}{mailbox_id}/resume/")

    assert response.status_code == 200
    assert response.json()["paused_reason"] == ""
    assert response.json()["consecutive_auth_failures"] == 0
    assert AuditEvent.objects.filter(action="mailbox.resumed", object_id=str(mailbox_id)).exists()


def test_pause_stops_syncing_until_resumed():
    user = make_user()
    client = client_for(user)
    mailbox_id = new_mailbox(client).json()["id"]

    response = client.post(f"{URL}{mailbox_id}/pause/", {"reason": "On holiday"}, format="json")

    assert response.json()["paused_reason"] == "On holiday"
    assert client.post(f"{URL}{mailbox_id}/sync/").status_code == 409


def test_sync_now_queues_a_run_that_captures_the_mail(dovecot, django_capture_on_commit_callbacks):
    user = make_user()
    client = client_for(user)
    username = dovecot.new_user()
    dovecot.append(username, "INBOX", [make_message(), make_message()])
    mailbox_id = new_mailbox(
        client,
        host=dovecot.host,
        port=dovecot.port,
        security="none",
        username=username,
        secret="secret",
    ).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{URL}{mailbox_id}/sync/")

    assert response.status_code == 202
    assert RawMessage.objects.filter(mailbox_id=mailbox_id).count() == 2
    body = client.get(f"{URL}{mailbox_id}/").json()
    assert body["last_sync_at"] is not None
    assert [f["name"] for f in body["folder_states"]] == ["INBOX"]
    assert body["folder_states"][0]["last_uid"] == 2
