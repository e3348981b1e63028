"""Adding a never-log rule offers to remove what is already stored from it: a preview with
counts, then a background task, both audited."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from capture.models import Attachment, Capture, EmailMessage, RawMessage, Thread
from crm.models import ApiToken
from governance.models import AuditEvent
from governance.never_log import preview_never_log_removal, queue_never_log_removal
from tests.capture.pipeline.helpers import capture, make_mail
from tests.crm.api_helpers import token_client
from tests.factories import make_never_log_rule, make_user

pytestmark = pytest.mark.django_db


def stored(data: bytes, user) -> EmailMessage:
    _, outcome = capture(data, RawMessage.Channel.IMAP, user_id=user.pk)
    assert outcome.status == RawMessage.Status.PROCESSED, outcome
    return EmailMessage.objects.get(pk=outcome.email_id)


@pytest.fixture
def world():
    sam, kim = (
        make_user(email="sam@mailwarden-demo.com"),
        make_user(email="kim@mailwarden-demo.com"),
    )
    doctor = stored(
        make_mail(from_="dr.who@clinic.example", to="sam@mailwarden-demo.com", message_id="<d@x>"),
        sam,
    )
    # the same domain's subdomain, and a message both users captured
    lab = stored(
        make_mail(
            from_="lab@results.clinic.example", to="sam@mailwarden-demo.com", message_id="<l@x>"
        ),
        sam,
    )
    shared = make_mail(
        from_="dr.who@clinic.example", to="kim@mailwarden-demo.com", message_id="<s@x>"
    )
    stored(shared, sam)
    both = stored(shared, kim)
    other = stored(
        make_mail(from_="tom@globex.example", to="sam@mailwarden-demo.com", message_id="<o@x>"), sam
    )
    return {"sam": sam, "kim": kim, "doctor": doctor, "lab": lab, "both": both, "other": other}


def run_removal(client: APIClient, url: str, capture_callbacks) -> None:
    with capture_callbacks(execute=True):
        assert client.post(url).status_code == 202


def test_an_org_domain_rule_previews_and_removes_every_matching_message(
    world, django_capture_on_commit_callbacks
):
    rule = make_never_log_rule("clinic.example")
    client = token_client([ApiToken.Scope.GOVERNANCE_ADMIN])
    preview = client.get(f"/api/v1/never-log-rules/{rule.pk}/removal-preview/")
    assert preview.status_code == 200
    assert preview.json() == {"messages": 3, "threads": 3, "attachments": 0}
    assert EmailMessage.objects.count() == 4  # a preview deletes nothing
    run_removal(
        client,
        f"/api/v1/never-log-rules/{rule.pk}/remove-stored/",
        django_capture_on_commit_callbacks,
    )
    assert list(EmailMessage.objects.values_list("pk", flat=True)) == [world["other"].pk]
    assert Thread.objects.count() == 1
    assert RawMessage.objects.count() == 1  # the raw bytes go with the message
    done = AuditEvent.objects.get(action="never_log.removed")
    assert done.detail["messages"] == 3 and done.detail["threads"] == 3
    assert AuditEvent.objects.filter(action="never_log.removal_previewed").exists()
    assert not any("clinic" in str(e.detail) for e in AuditEvent.objects.all())


def test_a_personal_rule_removes_only_its_owners_captures(
    world, django_capture_on_commit_callbacks
):
    sam = world["sam"]
    rule = make_never_log_rule("dr.who@clinic.example", user=sam)
    assert preview_never_log_removal(rule) == {"messages": 1, "threads": 1, "attachments": 0}
    client = APIClient()
    client.force_login(sam)
    run_removal(
        client, f"/api/v1/me/never-log/{rule.pk}/remove-stored/", django_capture_on_commit_callbacks
    )
    assert not EmailMessage.objects.filter(pk=world["doctor"].pk).exists()
    # Kim captured the shared message too: it stays, without Sam's capture
    assert EmailMessage.objects.filter(pk=world["both"].pk).exists()
    assert list(Capture.objects.filter(email=world["both"]).values_list("user", flat=True)) == [
        world["kim"].pk
    ]
    assert EmailMessage.objects.filter(pk=world["lab"].pk).exists()  # another address


def test_another_users_personal_rule_cannot_be_previewed_or_run(world):
    rule = make_never_log_rule("clinic.example", user=world["sam"])
    client = APIClient()
    client.force_login(world["kim"])
    assert client.get(f"/api/v1/me/never-log/{rule.pk}/removal-preview/").status_code == 404
    assert client.post(f"/api/v1/me/never-log/{rule.pk}/remove-stored/").status_code == 404
    assert EmailMessage.objects.count() == 4


def test_attachments_are_counted_and_removed(django_capture_on_commit_callbacks, mail_fixture):
    user = make_user(email="sam.seller@mailwarden-demo.com")
    email = stored(mail_fixture("nested_multipart.eml"), user)
    attachments = Attachment.objects.filter(email=email).count()
    assert attachments
    sender = email.participants.get(role="from").address
    rule = make_never_log_rule(sender)
    assert preview_never_log_removal(rule)["attachments"] == attachments
    with django_capture_on_commit_callbacks(execute=True):
        queue_never_log_removal(rule)
    assert not Attachment.objects.exists()
    assert not EmailMessage.objects.exists()
