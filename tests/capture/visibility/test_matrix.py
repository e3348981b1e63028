"""Who may see what: each role x each visibility x each surface (docs/governance.md).

The expected levels are the specification table in conftest.EXPECTED; every surface must
show exactly that much of each message: existence, subject, body, attachments."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from rest_framework.test import APIClient

from capture.models import Attachment
from capture.visibility import Level, Viewer, access_for
from crm.models import ApiToken
from governance.models import AuditEvent
from tests.capture.visibility.conftest import BODY, CASES, EXPECTED, ROLES

LEVELS = {
    "none": Level.NONE,
    "metadata": Level.METADATA,
    "subject": Level.SUBJECT,
    "full": Level.FULL,
}
SESSION_ROLES = [r for r in ROLES if r not in ("token_without_read", "service")]


def expected(role: str, case: str) -> Level:
    return LEVELS[EXPECTED[role][case]]


def scopes_for(role: str) -> tuple[str, ...]:
    return ("crm:read",) if role == "token_without_read" else ("capture:read",)


def client_for(world, role: str, case: str) -> APIClient:
    """An API client with a real token of the role's user (a service token for "service")."""
    _, key = ApiToken.issue(
        user=world.viewer(role, case),
        name="t",
        scopes=list(scopes_for(role)),
        service="crm-sync" if role == "service" else "",
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def views(email) -> int:
    return AuditEvent.objects.filter(action="message.viewed", object_id=str(email.pk)).count()


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("role", ROLES)
def test_the_decision(world, role, case):
    user = world.viewer(role, case)
    viewer = Viewer(user, frozenset(scopes_for(role)))
    access = access_for(viewer, world.emails[case])
    level = expected(role, case)
    assert access.level == level, access
    assert access.exists == (level >= Level.METADATA)
    assert access.subject == (level >= Level.SUBJECT)
    assert access.body == access.attachments == (level == Level.FULL)
    assert bool(access.reason) == (level < Level.FULL)


@pytest.mark.parametrize("role", ROLES)
def test_api_list(world, api, role):
    for case, email in world.emails.items():
        response = client_for(world, role, case).get("/api/v1/emails/")
        level = expected(role, case)
        if role == "token_without_read":
            assert response.status_code == 403
            continue
        rows = {r["id"]: r for r in response.json()["results"]}
        assert (email.pk in rows) == (level >= Level.METADATA), case
        if email.pk in rows:
            row = rows[email.pk]
            assert (row["subject"] == email.subject) == (level >= Level.SUBJECT), case
            assert (row["subject"] is None) == (level < Level.SUBJECT), case
            assert row["access"]["body"] == (level == Level.FULL), case


@pytest.mark.parametrize("role", ROLES)
def test_api_detail_and_its_audit(world, api, role):
    for case, email in world.emails.items():
        response = client_for(world, role, case).get(f"/api/v1/emails/{email.pk}/")
        level = expected(role, case)
        if role == "token_without_read":
            assert response.status_code == 403
            assert views(email) == 0
            continue
        if level == Level.NONE:
            assert response.status_code == 404, case
            continue
        body = response.json()
        assert (body["subject"] is not None) == (level >= Level.SUBJECT), case
        assert (body["text_body"] == BODY) == (level == Level.FULL), case
        assert (body["text_body"] is None) == (level < Level.FULL), case
        assert (body["html_body"] is None) == (level < Level.FULL), case
        assert (body["attachments"] is None) == (level < Level.FULL), case
        assert views(email) == (1 if level == Level.FULL else 0), case


@pytest.mark.parametrize("role", ROLES)
def test_api_attachment_download_and_its_audit(world, api, role):
    for case, email in world.emails.items():
        att = Attachment.objects.filter(email=email).first()
        att_id = att.pk if att else 999_999
        response = client_for(world, role, case).get(
            f"/api/v1/emails/{email.pk}/attachments/{att_id}/"
        )
        level = expected(role, case)
        downloads = AuditEvent.objects.filter(action="attachment.downloaded", object_id=str(att_id))
        if role == "token_without_read":
            assert response.status_code == 403
        elif level == Level.NONE:
            assert response.status_code == 404, case
        elif level < Level.FULL:
            assert response.status_code == 403, case
            assert "hidden" in response.json()["detail"], case
        else:
            assert response.status_code == 200, case
            assert b"".join(response.streaming_content) == f"attachment of {case}".encode()
        assert downloads.count() == (1 if response.status_code == 200 else 0), case


@pytest.mark.parametrize("role", ROLES)
def test_timeline(world, api, role):
    for case, email in world.emails.items():
        response = client_for(world, role, case).get(
            f"/api/v1/contacts/{world.contact.pk}/timeline/?size=100"
        )
        level = expected(role, case)
        if role == "token_without_read":
            assert response.status_code == 403
            continue
        entries = {e["thread"]: e for e in response.json()["results"]}
        assert (email.thread_id in entries) == (level >= Level.METADATA), case
        if email.thread_id in entries:
            entry = entries[email.thread_id]
            assert (entry["thread_subject"] is None) == (level < Level.SUBJECT), case
            assert (entry["email"]["subject"] is None) == (level < Level.SUBJECT), case
            assert entry["access"]["body"] == (level == Level.FULL), case


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", SESSION_ROLES)
def test_admin_viewer_page_and_body_frame(world, role):
    for case, email in world.emails.items():
        client = session(world.viewer(role, case))
        level = expected(role, case)
        page = client.get(f"/admin/capture/emailmessage/{email.pk}/view/")
        frame = client.get(f"/admin/capture/emailmessage/{email.pk}/body/")
        if level == Level.NONE:
            assert page.status_code == frame.status_code == 404, case
            continue
        html = page.content.decode()
        assert page.status_code == 200, case
        assert (email.subject in html) == (level >= Level.SUBJECT), case
        assert ('id="mw-body"' in html) == (level == Level.FULL), case
        assert ("(hidden:" in html) == (level < Level.FULL), case
        assert BODY not in html  # the page never holds the body: the frame does
        assert (BODY in frame.content.decode()) == (level == Level.FULL), case
        assert views(email) == (1 if level == Level.FULL else 0), case


@pytest.mark.parametrize("role", SESSION_ROLES)
def test_admin_change_page_and_list(world, role):
    listing = None
    for case, email in world.emails.items():
        client = session(world.viewer(role, case))
        level = expected(role, case)
        change = client.get(f"/admin/capture/emailmessage/{email.pk}/change/")
        if level == Level.NONE:
            assert change.status_code == 302, case  # "does not exist" (admin's answer)
        else:
            assert change.status_code == 200, case
            assert (email.subject in change.content.decode()) == (level >= Level.SUBJECT), case
            assert BODY not in change.content.decode()
            assert (f"{case}.pdf" in change.content.decode()) == (level == Level.FULL), case
        listing = client.get("/admin/capture/emailmessage/").content.decode()
        viewer_url = f"/admin/capture/emailmessage/{email.pk}/view/"
        assert (viewer_url in listing) == (level >= Level.METADATA), case
        assert (email.subject in listing) == (level >= Level.SUBJECT), case
        assert views(email) == 0  # neither page shows a body
    assert listing is not None


@pytest.mark.parametrize("role", SESSION_ROLES)
def test_csv_export(world, role):
    for case, email in world.emails.items():
        client = session(world.viewer(role, case))
        level = expected(role, case)
        response = client.post(
            "/admin/capture/emailmessage/",
            {
                "action": "export_csv",
                "_selected_action": [e.pk for e in world.emails.values()],
            },
        )
        if response.status_code == 302:  # nothing selectable: nothing exported
            assert level == Level.NONE or not response.get("Content-Type", "").startswith(
                "text/csv"
            )
            continue
        rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(response.content.decode()))}
        assert (email.pk in rows) == (level >= Level.METADATA), case
        if email.pk in rows:
            assert (rows[email.pk]["subject"] == email.subject) == (level >= Level.SUBJECT), case
            assert BODY not in response.content.decode()


@pytest.mark.parametrize("field", ["email", "thread"])
@pytest.mark.parametrize("role", SESSION_ROLES)
def test_admin_autocomplete_never_prints_a_hidden_subject(world, role, field):
    """Autocomplete prints str(message) / str(thread), i.e. the subject, unmasked: it offers
    only rows whose subject the user may read (a conservative subset)."""
    for case, email in world.emails.items():
        client = session(world.viewer(role, case))
        response = client.get(
            "/admin/autocomplete/",
            {"app_label": "capture", "model_name": "timelinepin", "field_name": field, "term": ""},
        )
        assert response.status_code == 200, response.content
        texts = {r["text"] for r in response.json()["results"]}
        if email.subject in texts:
            assert expected(role, case) >= Level.SUBJECT, case
        if role == "owner" and case == "logged":
            assert email.subject in texts  # the owner finds their own mail


@pytest.mark.parametrize("role", ROLES)
def test_meetings_show_only_where_the_subject_is_readable(world, api, role):
    """A meeting's summary, place and attendees say as much as a subject."""
    for case in CASES:
        response = client_for(world, role, case).get("/api/v1/meetings/")
        if role == "token_without_read":
            assert response.status_code == 403
            continue
        summaries = {m["summary"] for m in response.json()["results"]}
        if f"Meeting of {case}" in summaries:
            assert expected(role, case) >= Level.SUBJECT, case
        if role in ("owner", "compliance") and case == "logged":
            assert f"Meeting of {case}" in summaries


@pytest.mark.parametrize("role", SESSION_ROLES)
def test_threads_in_admin_and_api(world, api, role):
    for case, email in world.emails.items():
        user = world.viewer(role, case)
        level = expected(role, case)
        page = session(user).get(f"/admin/capture/thread/{email.thread_id}/change/")
        detail = api(user).get(f"/api/v1/threads/{email.thread_id}/")
        if level == Level.NONE:
            assert page.status_code == 302 and detail.status_code == 404, case
            continue
        assert page.status_code == 200 and detail.status_code == 200, case
        assert (email.subject in page.content.decode()) == (level >= Level.SUBJECT), case
        body = detail.json()
        assert (body["subject"] is None) == (level < Level.SUBJECT), case
        assert [m["id"] for m in body["messages"]] == [email.pk]
        assert (body["messages"][0]["subject"] is None) == (level < Level.SUBJECT), case


@pytest.mark.parametrize("role", ["owner", "admin", "manager", "compliance"])
def test_searching_a_subject_finds_only_subjects_you_may_read(world, api, role):
    for case, email in world.emails.items():
        response = api(world.viewer(role, case)).get(
            "/api/v1/emails/", {"search": f"Subject of {case}"}
        )
        found = {r["id"] for r in response.json()["results"]}
        if email.pk in found:
            assert expected(role, case) >= Level.SUBJECT, case
        if case == "logged":
            assert email.pk in found, role
