"""A world for the visibility matrix: one message per kind of visibility, each captured by
its own member of team A (its "owner"), and one viewer per role.

Built directly with the ORM (the pipeline has its own tests); each message has a text and an
HTML body, a stored attachment, a participant, and a thread linked to one contact (so it is
on that contact's timeline).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission

from capture import storage
from capture.models import (
    Attachment,
    Blob,
    Capture,
    EmailMessage,
    Meeting,
    MeetingMessage,
    Participant,
    RawMessage,
    Thread,
    ThreadLink,
)
from crm.models import Team
from governance.models import UserSettings
from tests.factories import make_contact, make_user

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
BODY = "The secret price is 4711 per unit."
_seq = itertools.count(1)

# case -> (capture channel, owner's synced_mail_visibility, stored level, private thread)
CASES: dict[str, tuple[str, str, str, bool]] = {
    "logged": ("smtp", "", "full", False),
    "synced_metadata": ("imap", "metadata", "full", False),
    "synced_subject": ("imap", "subject", "full", False),
    "synced_everything": ("imap", "everything", "full", False),
    "stored_subject": ("smtp", "", "subject", False),
    "private": ("smtp", "", "full", True),
}
ROLES = (
    "owner",
    "admin",
    "compliance",
    "manager",
    "other_manager",
    "member",
    "participant",
    "token_without_read",
    "service",
)
N, M, S, F = "none", "metadata", "subject", "full"
# The specification (docs/governance.md, "Who may see what"): what each role sees of each case.
EXPECTED: dict[str, dict[str, str]] = {
    "owner": dict(logged=F, synced_metadata=F, synced_subject=F, synced_everything=F, stored_subject=S, private=F),
    "admin": dict(logged=F, synced_metadata=M, synced_subject=S, synced_everything=F, stored_subject=S, private=M),
    "compliance": dict(logged=F, synced_metadata=F, synced_subject=F, synced_everything=F, stored_subject=S, private=M),
    "manager": dict(logged=F, synced_metadata=M, synced_subject=S, synced_everything=F, stored_subject=S, private=N),
    "other_manager": dict.fromkeys(CASES, N),
    "member": dict.fromkeys(CASES, N),
    "participant": dict(logged=F, synced_metadata=F, synced_subject=F, synced_everything=F, stored_subject=S, private=N),
    "token_without_read": dict.fromkeys(CASES, N),
    # A service token (an integration's) acts as its service user (here an admin), within
    # its scopes.
    "service": dict(logged=F, synced_metadata=M, synced_subject=S, synced_everything=F, stored_subject=S, private=M),
}  # fmt: skip


@dataclass
class World:
    emails: dict[str, EmailMessage] = field(default_factory=dict)
    owners: dict[str, object] = field(default_factory=dict)
    viewers: dict[str, object] = field(default_factory=dict)
    contact: object = None

    def viewer(self, role: str, case: str):
        """The user playing `role` for `case` (the owner differs per case)."""
        if role in ("owner", "token_without_read"):
            return self.owners[case]
        return self.viewers[role]


def _message(case: str, owner, contact, participant, team_date: datetime) -> EmailMessage:
    channel, _, stored, private = CASES[case]
    n = next(_seq)
    thread = Thread.objects.create(
        subject=f"Subject of {case}", owner=owner, private=private, first_at=team_date,
        last_at=team_date, message_count=1,
    )  # fmt: skip
    email = EmailMessage.objects.create(
        message_id=f"<{case}-{n}@vis.test>",
        thread=thread,
        subject=f"Subject of {case}",
        date=team_date,
        from_address="buyer@globex.example",
        text_body=BODY if stored == "full" else "",
        html_body=f"<p>{BODY}</p>" if stored == "full" else "",
        stored=stored,
        has_attachments=True,
    )
    raw_bytes = f"Message-ID: <{case}-{n}@vis.test>\r\n\r\n{BODY}\r\n".encode()
    digest, rel = storage.save_raw(raw_bytes, fsync=False)
    raw = RawMessage.objects.create(
        sha256=digest, size=len(raw_bytes), storage_path=rel, channel=channel, user=owner,
        email=email, status="processed",
    )  # fmt: skip
    Capture.objects.create(email=email, raw=raw, user=owner, channel=channel)
    Participant.objects.create(email=email, role="from", address="buyer@globex.example")
    Participant.objects.create(
        email=email, role="to", address=participant.email, user=participant, match="internal"
    )
    if stored == "full":
        data = f"attachment of {case}".encode()
        digest, rel = storage.save_blob(data, fsync=False)
        blob = Blob.objects.create(sha256=digest, size=len(data), storage_path=rel)
        Attachment.objects.create(
            email=email, blob=blob, filename=f"{case}.pdf", content_type="application/pdf",
            size=len(data), sha256=digest,
        )  # fmt: skip
    ThreadLink.objects.create(
        thread=thread, contact=contact, source="participant", last_at=team_date
    )
    meeting = Meeting.objects.create(
        uid=f"{case}-{n}@vis.test", summary=f"Meeting of {case}", start=team_date
    )
    MeetingMessage.objects.create(meeting=meeting, email=email, method="REQUEST")
    return email


@pytest.fixture
def world(db) -> World:
    team_a, team_b = Team.objects.create(name="A"), Team.objects.create(name="B")
    view_perms = Permission.objects.filter(
        content_type__app_label="capture",
        codename__in=[
            "view_emailmessage",
            "change_emailmessage",
            "view_thread",
            "view_attachment",
            "view_participant",
            "view_capture",
        ],
    )

    def staff(**kw):
        user = make_user(is_staff=True, **kw)
        user.user_permissions.add(*view_perms)
        return user

    w = World(contact=make_contact(emails=("buyer@globex.example",)))
    w.viewers = {
        "admin": staff(role="admin"),
        "compliance": staff(role="compliance"),
        "manager": staff(role="manager", team=team_a),
        "other_manager": staff(role="manager", team=team_b),
        "member": staff(role="member", team=team_a),
        "participant": staff(role="member", team=team_b),
        "service": make_user(role="admin", username="svc-crm-sync"),
    }
    for i, (case, (_, shares, _, _)) in enumerate(CASES.items()):
        owner = staff(role="member", team=team_a)
        if shares:
            UserSettings.objects.create(user=owner, synced_mail_visibility=shares)
        w.owners[case] = owner
        w.emails[case] = _message(
            case, owner, w.contact, w.viewers["participant"], T0 + timedelta(hours=i)
        )
    return w
