"""A thread's owner marks it private or shares it again: API and admin action, audited."""

from __future__ import annotations

import pytest

from capture.models import EmailMessage, Thread
from governance.models import AuditEvent
from tests.capture.pipeline.helpers import capture, make_mail
from tests.crm.admin_helpers import superuser_client
from tests.crm.api_helpers import token_client
from tests.factories import make_user, set_org_settings

pytestmark = pytest.mark.django_db
OURS = "mailwarden-demo.com"
SCOPES = ["capture:read", "capture:write"]


@pytest.fixture
def owner():
    set_org_settings(internal_domains=[OURS])
    return make_user(email=f"sam@{OURS}")


@pytest.fixture
def thread(owner):
    capture(
        make_mail(message_id=f"<t1@{OURS}>", from_=f"sam@{OURS}", to="tom@globex.test"),
        user_id=owner.pk,
    )
    return EmailMessage.objects.get().thread


def test_the_owner_marks_a_thread_private_and_shares_it_again_audited(owner, thread):
    client = token_client(SCOPES, user=owner)
    response = client.post(f"/api/v1/threads/{thread.pk}/private/")
    assert response.status_code == 200, response.content
    assert response.json()["private"] is True
    assert Thread.objects.get(pk=thread.pk).private
    made = AuditEvent.objects.get(action="thread.made_private")
    assert (made.object_id, made.channel, made.actor_user_id) == (str(thread.pk), "api", owner.pk)
    response = client.post(f"/api/v1/threads/{thread.pk}/share/")
    assert response.status_code == 200 and response.json()["private"] is False
    assert not Thread.objects.get(pk=thread.pk).private
    assert AuditEvent.objects.filter(action="thread.shared").count() == 1


def test_marking_twice_changes_and_audits_once(owner, thread):
    client = token_client(SCOPES, user=owner)
    for _ in range(2):
        assert client.post(f"/api/v1/threads/{thread.pk}/private/").status_code == 200
    assert AuditEvent.objects.filter(action="thread.made_private").count() == 1


def test_sharing_again_shares_the_owners_private_mail_in_it(owner):
    capture(
        make_mail(
            message_id=f"<p1@{OURS}>",
            from_=f"sam@{OURS}",
            to="tom@globex.test",
            subject="[private] notes",
        ),
        user_id=owner.pk,
    )
    email = EmailMessage.objects.get()
    assert email.private and email.thread.private
    client = token_client(SCOPES, user=owner)
    assert client.post(f"/api/v1/threads/{email.thread_id}/share/").status_code == 200
    email.refresh_from_db()
    assert not email.private and not email.thread.private
    assert email.stored == "metadata"  # what was never kept does not come back
    assert AuditEvent.objects.get(action="thread.shared").detail["messages_shared"] == 1


def test_someone_else_cannot_see_or_change_the_thread(owner, thread):
    stranger = make_user()
    client = token_client(SCOPES, user=stranger)
    assert client.post(f"/api/v1/threads/{thread.pk}/private/").status_code == 404
    assert not Thread.objects.get(pk=thread.pk).private


def test_an_admin_may_mark_private_but_only_the_owner_shares_again(owner, thread):
    admin_user = make_user(role="admin")
    client = token_client(SCOPES, user=admin_user)
    assert client.post(f"/api/v1/threads/{thread.pk}/private/").status_code == 200
    response = client.post(f"/api/v1/threads/{thread.pk}/share/")
    assert response.status_code == 403
    assert Thread.objects.get(pk=thread.pk).private


def test_a_read_only_token_cannot_change_privacy(owner, thread):
    client = token_client(["capture:read"], user=owner)
    assert client.post(f"/api/v1/threads/{thread.pk}/private/").status_code == 403


def test_the_admin_actions_mark_private_and_share(owner, thread):
    client, root = superuser_client()
    url = "/admin/capture/thread/"
    response = client.post(
        url, {"action": "make_private", "_selected_action": [thread.pk]}, follow=True
    )
    assert response.status_code == 200
    assert Thread.objects.get(pk=thread.pk).private
    event = AuditEvent.objects.get(action="thread.made_private")
    assert (event.channel, event.actor_user_id) == ("admin", root.pk)
    # the superuser does not own it: sharing is refused and said so
    response = client.post(url, {"action": "share", "_selected_action": [thread.pk]}, follow=True)
    assert "skipped" in response.content.decode()
    assert Thread.objects.get(pk=thread.pk).private
