"""A message the gate marked private (subject tag, Sensitivity, the add-in's flag, the user's
default) is visible to the users who captured it; admins and compliance officers see only
that it exists; colleagues (and their managers) see nothing — even in a thread that is not
private."""

from __future__ import annotations

import pytest

from capture.models import EmailMessage, RawMessage
from capture.visibility import access_map, visible_emails
from crm.models import Team, User
from tests.capture.pipeline.helpers import capture, make_mail
from tests.factories import make_user, set_org_settings

pytestmark = pytest.mark.django_db

OURS = "mailwarden-demo.com"


def test_a_private_message_is_its_capturers_alone():
    set_org_settings(internal_domains=[OURS])
    team = Team.objects.create(name="Sales")
    sam = make_user(email=f"sam.seller@{OURS}", team=team)
    raw, outcome = capture(
        make_mail(
            message_id=f"<p1@{OURS}>",
            from_=f"Sam <sam.seller@{OURS}>",
            to="tom@globex.test",
            subject="[private] my doctor",
        ),
        user_id=sam.pk,
    )
    assert raw.status == RawMessage.Status.PROCESSED
    email = EmailMessage.objects.get(pk=outcome.email_id)
    assert email.private
    colleague = make_user(team=team)
    manager = make_user(role=User.Role.MANAGER, team=team)
    admin = make_user(role=User.Role.ADMIN)
    officer = make_user(role=User.Role.COMPLIANCE)
    for user, exists, subject in (
        (sam, True, False),  # stored metadata-only: the capturer sees what is stored
        (admin, True, False),
        (officer, True, False),
        (colleague, False, False),
        (manager, False, False),
    ):
        access = access_map(user, [email.pk])[email.pk]
        assert (access.exists, access.subject, access.body) == (exists, subject, False), user
        assert visible_emails(user).filter(pk=email.pk).exists() == exists, user
