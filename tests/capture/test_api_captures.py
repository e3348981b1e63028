"""POST/GET /api/v1/captures/: store raw mail from integrations and add-ins, answer 202."""

from __future__ import annotations

import base64

import pytest
from django.db import DatabaseError
from rest_framework.test import APIClient

import capture.intake
from capture.models import Category, RawMessage
from capture.storage import read_raw
from crm.models import ApiToken, User
from governance.models import AuditEvent
from tests.factories import make_contact, make_item, make_organization, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/captures/"


def client_for(user: User, scopes=("capture:write", "capture:read")) -> APIClient:
    _, key = ApiToken.issue(user=user, name="add-in", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def post_raw(client: APIClient, data: bytes, **headers):
    return client.post(URL, data=data, content_type="message/rfc822", **headers)


def post_addin(client: APIClient, data: bytes, **fields):
    body = {"mime_base64": base64.b64encode(data).decode(), **fields}
    return client.post(URL, body, format="json")


def test_raw_rfc822_post_stores_the_exact_bytes_and_answers_202_with_the_raw_id(mail_fixture):
    user = make_user()
    data = mail_fixture("multipart_alternative.eml")
    response = post_raw(client_for(user), data)
    assert response.status_code == 202, response.content
    raw = RawMessage.objects.get(pk=response.json()["id"])
    assert read_raw(raw.storage_path) == data
    assert raw.channel == RawMessage.Channel.API
    assert raw.user == user
    assert response.json()["url"].endswith(f"/api/v1/captures/{raw.pk}/")
    assert response.json()["duplicate"] is False


def test_the_same_raw_message_posted_twice_answers_with_the_first_raw_id(mail_fixture):
    client = client_for(make_user())
    data = mail_fixture("multipart_alternative.eml")
    first = post_raw(client, data)
    second = post_raw(client, data)
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["duplicate"] is True
    assert RawMessage.objects.count() == 1


def test_a_client_idempotency_key_makes_a_retry_a_duplicate_even_with_other_bytes(mail_fixture):
    client = client_for(make_user())
    first = post_raw(client, mail_fixture("draft.eml"), HTTP_IDEMPOTENCY_KEY="req-1")
    again = post_raw(client, mail_fixture("dsn.eml"), HTTP_IDEMPOTENCY_KEY="req-1")
    other = post_raw(client, mail_fixture("dsn.eml"), HTTP_IDEMPOTENCY_KEY="req-2")
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    assert RawMessage.objects.count() == 2


def test_two_users_posting_the_same_mail_get_two_captures(mail_fixture):
    data = mail_fixture("multipart_alternative.eml")
    a = post_raw(client_for(make_user()), data)
    b = post_raw(client_for(make_user()), data)
    assert a.json()["id"] != b.json()["id"]


def test_addin_json_stores_the_decoded_mime_with_the_users_choices(mail_fixture):
    Category.objects.bulk_create([Category(name="quote"), Category(name="widgets")])
    user = make_user()
    contact = make_contact(emails=("jane.doe@acme-widgets.com",))
    org = make_organization()
    item = make_item(contacts=(contact,))
    data = mail_fixture("multipart_alternative.eml")
    response = post_addin(
        client_for(user),
        data,
        links={"contacts": [contact.pk], "organizations": [org.pk], "items": [item.pk]},
        categories=["quote", "widgets"],
        attachments=["offer.pdf"],
        source="outlook-addin/1.2",
    )
    assert response.status_code == 202, response.content
    raw = RawMessage.objects.get(pk=response.json()["id"])
    assert read_raw(raw.storage_path) == data
    assert raw.channel == RawMessage.Channel.ADDIN
    assert raw.source == "outlook-addin/1.2"
    assert raw.options == {
        "links": {"contacts": [contact.pk], "organizations": [org.pk], "items": [item.pk]},
        "categories": ["quote", "widgets"],
        "attachments": ["offer.pdf"],
    }


def test_addin_without_an_attachment_list_keeps_all_and_an_empty_list_keeps_none(mail_fixture):
    client = client_for(make_user())
    data = mail_fixture("inline_image.eml")
    absent = RawMessage.objects.get(pk=post_addin(client, data).json()["id"])
    empty = RawMessage.objects.get(pk=post_addin(client, data, attachments=[]).json()["id"])
    assert "attachments" not in absent.options
    assert empty.options["attachments"] == []


def test_addin_saving_the_same_mail_with_other_records_is_a_new_capture(mail_fixture):
    client = client_for(make_user())
    data = mail_fixture("multipart_alternative.eml")
    c1, c2 = make_contact(), make_contact()
    first = post_addin(client, data, links={"contacts": [c1.pk]})
    repeat = post_addin(client, data, links={"contacts": [c1.pk]})
    other = post_addin(client, data, links={"contacts": [c2.pk]})
    assert repeat.json()["id"] == first.json()["id"]
    assert repeat.json()["duplicate"] is True
    assert other.json()["id"] != first.json()["id"]


def test_addin_links_to_unknown_records_are_refused_listing_the_unknown_ids(mail_fixture):
    contact = make_contact()
    response = post_addin(
        client_for(make_user()),
        mail_fixture("multipart_alternative.eml"),
        links={"contacts": [contact.pk, 999_001], "items": [999_002]},
    )
    assert response.status_code == 400
    errors = response.json()["links"]
    assert errors["contacts"] == ["Unknown ids: 999001."]
    assert errors["items"] == ["Unknown ids: 999002."]
    assert RawMessage.objects.count() == 0


def test_addin_base64_that_does_not_decode_is_a_400():
    client = client_for(make_user())
    response = client.post(URL, {"mime_base64": "not base64 at all!!"}, format="json")
    assert response.status_code == 400
    assert "base64" in str(response.json()["mime_base64"])
    assert RawMessage.objects.count() == 0


def test_addin_categories_must_be_strings(mail_fixture):
    response = post_addin(
        client_for(make_user()), mail_fixture("draft.eml"), categories=[{"name": "x"}]
    )
    assert response.status_code == 400
    assert "categories" in response.json()


def test_a_raw_message_over_the_size_limit_is_a_413_and_nothing_is_stored(settings, mail_fixture):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 200
    data = mail_fixture("multipart_alternative.eml")
    assert len(data) > 200
    response = post_raw(client_for(make_user()), data)
    assert response.status_code == 413
    assert "limit is 200 bytes" in response.json()["detail"]
    assert RawMessage.objects.count() == 0


def test_an_addin_message_over_the_size_limit_is_a_413(settings, mail_fixture):
    settings.MAILWARDEN_MAX_MESSAGE_BYTES = 200
    response = post_addin(client_for(make_user()), mail_fixture("multipart_alternative.eml"))
    assert response.status_code == 413
    assert RawMessage.objects.count() == 0


def test_an_empty_raw_body_is_a_400():
    response = post_raw(client_for(make_user()), b"")
    assert response.status_code == 400


def test_other_content_types_are_415(mail_fixture):
    response = client_for(make_user()).post(
        URL, data=mail_fixture("draft.eml"), content_type="text/plain"
    )
    assert response.status_code == 415


def test_a_token_without_capture_write_cannot_post(mail_fixture):
    client = client_for(make_user(), scopes=("capture:read",))
    response = post_raw(client, mail_fixture("draft.eml"))
    assert response.status_code == 403
    assert "capture:write" in response.json()["detail"]


def test_anonymous_requests_are_refused(mail_fixture):
    response = post_raw(APIClient(), mail_fixture("draft.eml"))
    assert response.status_code in (401, 403)


def test_a_capture_is_audited_with_the_token_as_actor(mail_fixture):
    user = make_user()
    response = post_raw(client_for(user), mail_fixture("draft.eml"))
    event = AuditEvent.objects.get(action="capture.received")
    assert event.object_id == str(response.json()["id"])
    assert event.actor_type == AuditEvent.ActorType.TOKEN
    assert event.actor_user_id == user.pk
    assert event.channel == "api"


def test_a_store_outage_answers_503_with_retry_after(monkeypatch, mail_fixture):
    def broken(*args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(capture.intake, "insert_raw_rows", broken)
    response = post_raw(client_for(make_user()), mail_fixture("draft.eml"))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"


def test_status_endpoint_shows_status_reason_and_attempts(mail_fixture):
    user = make_user()
    client = client_for(user)
    raw_id = post_raw(client, mail_fixture("draft.eml")).json()["id"]
    RawMessage.objects.filter(pk=raw_id).update(
        status="rejected",
        reason_code="draft",
        reason_detail="drafts are never captured",
        attempts=1,
    )
    body = client.get(f"{URL}{raw_id}/").json()
    assert body["status"] == "rejected"
    assert body["reason_code"] == "draft"
    assert body["reason_detail"] == "drafts are never captured"
    assert body["attempts"] == 1
    assert body["channel"] == "api"
    assert body["email"] is None


def test_users_see_only_their_own_captures_and_compliance_sees_all(mail_fixture):
    alice, bob = make_user(), make_user()
    officer = make_user(role=User.Role.COMPLIANCE)
    raw_id = post_raw(client_for(alice), mail_fixture("draft.eml")).json()["id"]
    assert client_for(bob).get(f"{URL}{raw_id}/").status_code == 404
    assert client_for(alice).get(f"{URL}{raw_id}/").status_code == 200
    assert client_for(officer).get(f"{URL}{raw_id}/").status_code == 200
    assert client_for(bob).get(URL).json()["results"] == []


def test_the_list_filters_by_status_and_channel(mail_fixture):
    client = client_for(make_user())
    api_id = post_raw(client, mail_fixture("draft.eml")).json()["id"]
    addin_id = post_addin(client, mail_fixture("dsn.eml")).json()["id"]
    RawMessage.objects.filter(pk=api_id).update(status="rejected")
    by_channel = client.get(URL, {"channel": "addin"}).json()["results"]
    by_status = client.get(URL, {"status": "rejected"}).json()["results"]
    assert [r["id"] for r in by_channel] == [addin_id]
    assert [r["id"] for r in by_status] == [api_id]
