"""Admin pages beside the matrix: the raw source (the whole message) follows body access,
and the viewer page costs the same queries however long the thread."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from capture.models import Capture, EmailMessage, RawMessage
from governance.models import AuditEvent
from tests.capture.visibility.conftest import BODY, T0


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "case", "allowed"),
    [
        ("owner", "logged", True),
        ("compliance", "logged", True),
        ("admin", "synced_metadata", False),  # the owner shares metadata only
        ("admin", "private", False),
        ("compliance", "private", False),
        ("manager", "synced_subject", False),
        ("manager", "synced_everything", True),
    ],
)
def test_raw_source_needs_body_access(world, role, case, allowed):
    user = world.viewer(role, case)
    user.user_permissions.add(Permission.objects.get(codename="view_rawmessage"))
    raw = RawMessage.objects.get(email=world.emails[case])
    response = session(user).get(f"/admin/capture/rawmessage/{raw.pk}/source/")
    assert (response.status_code == 200) == allowed
    assert (BODY.encode() in response.content) == allowed
    assert AuditEvent.objects.filter(action="raw.source_viewed").exists() == allowed
    if not allowed:
        assert response.status_code == 403


def test_the_viewer_page_costs_the_same_queries_however_long_the_thread(world):
    email = world.emails["logged"]
    owner = world.owners["logged"]
    client = session(owner)
    client.get(f"/admin/capture/emailmessage/{email.pk}/view/")  # warm the session
    counts = []
    for extra in (0, 20):
        for i in range(extra):
            reply = EmailMessage.objects.create(
                message_id=f"<reply-{extra}-{i}@vis.test>", thread=email.thread,
                subject=f"Re: {email.subject}", date=T0 + timedelta(minutes=i + 1),
                from_address="buyer@globex.example",
            )  # fmt: skip
            raw = RawMessage.objects.create(
                sha256=f"{extra:02d}{i:062d}", size=1, storage_path=f"x/{extra}/{i}",
                channel="smtp", user=owner, email=reply, status="processed",
            )  # fmt: skip
            Capture.objects.create(email=reply, raw=raw, user=owner, channel="smtp")
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(f"/admin/capture/emailmessage/{email.pk}/view/")
        assert response.status_code == 200
        assert response.content.decode().count('class="mw-message') == 1 + extra
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("case", ["synced_metadata", "private"])
def test_no_admin_page_prints_a_subject_the_user_may_not_read(world, case):
    """str(thread) / str(message) is the subject: every admin list and page that refers to a
    thread or message shows "#id" instead (the admin may see these exist, not their subject)."""
    from capture.models import ReviewItem, ThreadLink, TimelinePin, UnmatchedReference

    email = world.emails[case]
    admin = world.viewers["admin"]
    admin.is_superuser = True
    admin.save()
    pin = TimelinePin.objects.create(
        record_type="contact", record_id=world.contact.pk, thread=email.thread, email=email
    )
    review = ReviewItem.objects.create(kind="ambiguous_item", email=email, thread=email.thread)
    ref = UnmatchedReference.objects.create(email=email, reference="PO-1")
    link = ThreadLink.objects.get(thread=email.thread)
    raw = RawMessage.objects.get(email=email)
    client = session(admin)
    pages = [
        "/admin/capture/emailmessage/",
        f"/admin/capture/emailmessage/{email.pk}/change/",
        f"/admin/capture/emailmessage/{email.pk}/view/",
        "/admin/capture/thread/",
        f"/admin/capture/thread/{email.thread_id}/change/",
        "/admin/capture/threadlink/",
        f"/admin/capture/threadlink/{link.pk}/change/",
        "/admin/capture/timelinepin/",
        f"/admin/capture/timelinepin/{pin.pk}/change/",
        "/admin/capture/reviewitem/",
        f"/admin/capture/reviewitem/{review.pk}/change/",
        "/admin/capture/unmatchedreference/",
        f"/admin/capture/unmatchedreference/{ref.pk}/change/",
        f"/admin/capture/rawmessage/{raw.pk}/change/",
        f"/admin/crm/contact/{world.contact.pk}/change/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert email.subject not in content, url
        assert f"Meeting of {case}" not in content, url
    # ...while a subject the admin may read is shown (the check above can fail).
    logged = world.emails["logged"]
    assert (
        logged.subject
        in client.get(f"/admin/capture/emailmessage/{logged.pk}/change/").content.decode()
    )
