from __future__ import annotations

from governance.models import AuditEvent
from tests.capture.read.conftest import capture_bytes


def test_capturer_lists_their_email_without_bodies(world, api):
    res = api(world["alice"]).get("/api/v1/emails/")
    assert res.status_code == 200
    rows = res.json()["results"]
    assert [r["id"] for r in rows] == [world["email_id"]]
    assert rows[0]["subject"] == "Your quote Q-2025-0142"
    assert "text_body" not in rows[0]


def test_other_member_sees_nothing(world, api):
    assert api(world["bob"]).get("/api/v1/emails/").json()["results"] == []
    assert api(world["bob"]).get(f"/api/v1/emails/{world['email_id']}/").status_code == 404


def test_admin_sees_everything(world, api):
    assert len(api(world["admin"]).get("/api/v1/emails/").json()["results"]) == 1


def test_detail_has_participants_attachments_captures_links_and_is_audited(world, api):
    res = api(world["alice"]).get(f"/api/v1/emails/{world['email_id']}/")
    assert res.status_code == 200
    body = res.json()
    roles = {(p["role"], p["address"]) for p in body["participants"]}
    assert ("to", "jane.doe@acme-widgets.com") in roles
    assert any(a["filename"].endswith(".pdf") for a in body["attachments"])
    assert body["captures"][0]["channel"] == "import"
    linked = {(link["contact"], link["organization"]) for link in body["links"]}
    assert (world["contact"].pk, None) in linked
    assert (None, world["org"].pk) in linked
    assert AuditEvent.objects.filter(
        action="message.viewed", object_id=str(world["email_id"])
    ).exists()


def test_html_body_is_sanitised(db, api, mail_fixture):
    from tests.factories import make_user

    user = make_user()
    data = (
        b"From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\nMessage-ID: <xss@example.com>\r\n"
        b'Content-Type: text/html\r\n\r\n<p onclick="evil()">hi<script>alert(1)</script></p>\r\n'
    )
    email_id = capture_bytes(data, user)
    html = api(user).get(f"/api/v1/emails/{email_id}/").json()["html_body"]
    assert "script" not in html and "onclick" not in html and "hi" in html


def test_filters_by_contact_organization_direction_and_search(world, api):
    client = api(world["alice"])
    contact, org = world["contact"].pk, world["org"].pk
    assert len(client.get(f"/api/v1/emails/?contact={contact}").json()["results"]) == 1
    assert len(client.get(f"/api/v1/emails/?organization={org}").json()["results"]) == 1
    assert len(client.get("/api/v1/emails/?search=Q-2025-0142").json()["results"]) == 1
    assert len(client.get("/api/v1/emails/?search=jane.doe@acme").json()["results"]) == 1
    assert client.get("/api/v1/emails/?search=nothing-like-this").json()["results"] == []
    assert client.get(f"/api/v1/emails/?contact={contact + 999}").json()["results"] == []
    assert client.get("/api/v1/emails/?direction=bogus").status_code == 400


def test_attachment_download_is_an_attachment_with_nosniff(world, api):
    client = api(world["alice"])
    body = client.get(f"/api/v1/emails/{world['email_id']}/").json()
    stored = [a for a in body["attachments"] if a["download_url"]]
    assert stored, body["attachments"]
    res = client.get(stored[0]["download_url"])
    assert res.status_code == 200
    assert res["Content-Disposition"].startswith("attachment")
    assert res["X-Content-Type-Options"] == "nosniff"
    content = b"".join(res.streaming_content)
    assert len(content) == stored[0]["size"]
    inline = [a for a in body["attachments"] if a["inline"]]
    assert inline and inline[0]["download_url"] is None


def test_thread_endpoint_lists_visible_messages_and_links(world, api):
    client = api(world["alice"])
    email = client.get(f"/api/v1/emails/{world['email_id']}/").json()
    thread = client.get(f"/api/v1/threads/{email['thread']}/").json()
    assert [m["id"] for m in thread["messages"]] == [world["email_id"]]
    assert thread["links"]
    assert api(world["bob"]).get(f"/api/v1/threads/{email['thread']}/").status_code == 404


def test_reading_needs_the_capture_read_scope(world, api):
    assert api(world["alice"], scopes=("crm:read",)).get("/api/v1/emails/").status_code == 403
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/emails/").status_code == 401
