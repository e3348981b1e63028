"""The safe mail viewer in the admin: URL and structure, the body frame's policy, images only
through our proxy and only when asked, one audit event per body view."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from capture.models import EmailMessage, Thread, ThreadLink
from governance.models import AuditEvent
from tests.factories import make_contact, make_user

HTML = (
    '<p onclick="steal()">Dear customer</p><script>alert(1)</script>'
    '<img src="https://tracker.example/pixel.gif"><a href="javascript:alert(2)">x</a>'
)


@pytest.fixture
def mail(db):
    admin = make_user(role="compliance", is_staff=True, is_superuser=True)
    thread = Thread.objects.create(subject="Quote", owner=admin, message_count=2)
    when = datetime(2026, 3, 1, 9, tzinfo=UTC)
    first = EmailMessage.objects.create(
        message_id="<v1@test>", thread=thread, subject="Quote", date=when,
        from_address="a@globex.example", text_body="Dear customer (text)", html_body=HTML,
    )  # fmt: skip
    reply = EmailMessage.objects.create(
        message_id="<v2@test>", thread=thread, subject="Re: Quote", date=when.replace(hour=10),
        from_address="b@globex.example", text_body="Thanks",
    )  # fmt: skip
    contact = make_contact(emails=("a@globex.example",))
    ThreadLink.objects.create(
        thread=thread, contact=contact, source="participant", matched_address="a@globex.example"
    )
    client = Client()
    client.force_login(admin)
    return client, first, reply


def views(email) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="message.viewed", object_id=str(email.pk)))


def test_the_viewer_page_shows_the_thread_in_order_links_with_why_and_a_sandboxed_frame(mail):
    client, first, reply = mail
    page = client.get(f"/admin/capture/emailmessage/{first.pk}/view/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = re.findall(r'class="mw-message[^"]*" data-email="(\d+)"', html)
    assert rows == [str(first.pk), str(reply.pk)]
    assert "participant a@globex.example matched" in html  # the why of the link
    frame = re.search(r'<iframe id="mw-body"[^>]*>', html).group(0)
    assert (
        'sandbox="' in frame and "allow-scripts" not in frame and "allow-same-origin" not in frame
    )
    assert 'id="mw-show-images"' in html and 'id="mw-plain-text"' in html
    assert "Dear customer" not in html  # the body is in the frame only
    assert views(first) == []


def test_the_body_frame_is_sanitised_under_a_strict_policy_and_audited_once(mail):
    client, first, _ = mail
    response = client.get(f"/admin/capture/emailmessage/{first.pk}/body/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "img-src" not in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    body = response.content.decode()
    assert "Dear customer" in body
    assert "<script" not in body and "onclick" not in body and "javascript:" not in body
    assert "tracker.example" not in body
    events = views(first)
    assert len(events) == 1
    assert events[0].detail["part"] == "html" and "Dear" not in str(events[0].detail)


def test_plain_text_fallback(mail):
    client, first, reply = mail
    text = client.get(f"/admin/capture/emailmessage/{first.pk}/body/?format=text")
    assert "<pre>Dear customer (text)</pre>" in text.content.decode()
    assert "<p>" not in text.content.decode()
    only_text = client.get(f"/admin/capture/emailmessage/{reply.pk}/body/")
    assert "<pre>Thanks</pre>" in only_text.content.decode()
    assert len(views(first)) == 1 and len(views(reply)) == 1


def test_show_images_points_every_image_at_our_proxy_which_refuses_private_addresses(mail):
    client, first, _ = mail
    response = client.get(f"/admin/capture/emailmessage/{first.pk}/body/?images=1")
    assert "img-src 'self'" in response["Content-Security-Policy"]
    body = response.content.decode()
    src = re.search(r'<img src="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert src.startswith(f"/admin/capture/emailmessage/{first.pk}/image/?src=")
    assert "tracker.example" not in body
    # A forged or foreign token is not fetched.
    assert (
        client.get(f"/admin/capture/emailmessage/{first.pk}/image/?src=forged").status_code == 404
    )
    from capture.viewer import sign_image

    inside = sign_image(first.pk, "http://169.254.169.254/latest/meta-data/")
    refused = client.get(f"/admin/capture/emailmessage/{first.pk}/image/?src={inside}")
    assert refused.status_code == 502
    assert b"private_address" in refused.content


def test_other_users_and_anonymous_cannot_reach_the_viewer(mail, db):
    _, first, _ = mail
    assert Client().get(f"/admin/capture/emailmessage/{first.pk}/view/").status_code == 302
    stranger = make_user(is_staff=True)
    client = Client()
    client.force_login(stranger)
    for part in ("view/", "body/", "image/?src=x"):
        response = client.get(f"/admin/capture/emailmessage/{first.pk}/{part}")
        assert response.status_code == 404, part
    assert views(first) == []
