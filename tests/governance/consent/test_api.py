from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import ApiToken
from governance.consent import record_consent
from governance.models import AuditEvent, ConsentRecord
from tests.crm.api_helpers import crm_client, token_client
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/consents/"


def test_recording_a_basis_through_the_api_appends_a_row_stamped_with_the_token():
    contact = make_contact()
    client = crm_client()
    response = client.post(
        URL,
        {"contact": contact.pk, "basis": "contract", "source": "signed order 2025-114"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["basis"] == "contract"
    assert body["purpose"] == "processing"
    assert body["action"] == "granted"
    assert body["channel"] == "api"
    assert body["recorded_by"] == client.token.user_id
    assert body["recorded_by_label"] == client.token.audit_actor_label
    row = ConsentRecord.objects.get(pk=body["id"])
    assert row.source == "signed order 2025-114"
    event = AuditEvent.objects.get(action="consent.recorded")
    assert event.object_id == str(row.pk)
    assert event.channel == "api"
    assert event.address == "198.51.100.7"


def test_the_contact_consent_route_answers_the_current_basis_tracking_and_history_link():
    contact = make_contact()
    record_consent(
        contact.pk, basis="consent", effective_at=timezone.now() - timedelta(days=2), channel="api"
    )
    decider = record_consent(contact.pk, basis="legitimate_interest_customer", channel="admin")
    record_consent(contact.pk, purpose="tracking", basis="consent", action="refused", channel="api")
    body = crm_client().get(f"/api/v1/contacts/{contact.pk}/consent/").json()
    assert body["contact"] == contact.pk
    assert body["basis"] == "legitimate_interest_customer"
    assert body["has_basis"] is True
    assert body["basis_provenance"]["record_id"] == decider.pk
    assert body["basis_provenance"]["channel"] == "admin"
    assert body["tracking"] == "refused"
    assert body["history"].endswith(f"/api/v1/consents/?contact={contact.pk}")


def test_a_contact_without_history_answers_none_and_unknown_and_a_missing_one_404():
    contact = make_contact()
    client = crm_client()
    body = client.get(f"/api/v1/contacts/{contact.pk}/consent/").json()
    assert (body["basis"], body["has_basis"], body["tracking"]) == ("none", False, "unknown")
    assert body["basis_provenance"] is None
    assert client.get(f"/api/v1/contacts/{contact.pk + 1000}/consent/").status_code == 404


def test_the_history_lists_newest_first_and_filters_by_contact_purpose_basis_and_date():
    a, b = make_contact(), make_contact()
    old = record_consent(
        a.pk, basis="consent", effective_at=timezone.now() - timedelta(days=30), channel="api"
    )
    tracking = record_consent(a.pk, purpose="tracking", basis="consent", channel="api")
    other = record_consent(b.pk, basis="contract", channel="import")
    client = crm_client()

    def ids(**params) -> list[int]:
        response = client.get(URL, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids() == [other.pk, tracking.pk, old.pk]
    assert ids(contact=a.pk) == [tracking.pk, old.pk]
    assert ids(purpose="tracking") == [tracking.pk]
    assert ids(basis="contract") == [other.pk]
    assert ids(channel="import") == [other.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(effective_after=since) == [other.pk, tracking.pk]
    assert ids(effective_before=since) == [old.pk]
    assert client.get(f"{URL}{old.pk}/").json()["basis"] == "consent"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"basis": "gut_feeling"}, "basis"),
        ({"basis": "consent", "purpose": "marketing"}, "purpose"),
        ({"basis": "consent", "action": "refused"}, "action"),
        ({"basis": "contract", "purpose": "tracking"}, "basis"),
        ({"basis": "consent", "effective_at": "yesterday"}, "effective_at"),
        ({"basis": "consent", "source": "x" * 201}, "source"),
        ({"basis": "consent", "channel": "import"}, None),  # read-only: ignored, stays "api"
        ({"basis": "consent", "colour": "red"}, "colour"),
        ({}, "basis"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(body, field):
    contact = make_contact()
    response = crm_client().post(URL, {"contact": contact.pk, **body}, format="json")
    if field is None:
        assert response.status_code == 201
        assert response.json()["channel"] == "api"
        return
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not ConsentRecord.objects.exists()


def test_an_unknown_contact_is_a_400():
    response = crm_client().post(URL, {"contact": 999999, "basis": "consent"}, format="json")
    assert response.status_code == 400
    assert "contact" in response.json()


def test_an_evidence_file_is_uploaded_with_the_record(settings):
    contact = make_contact()
    upload = SimpleUploadedFile("consent.pdf", b"%PDF-1.4 signed", content_type="application/pdf")
    response = crm_client().post(
        URL,
        {
            "contact": contact.pk,
            "basis": "consent",
            "evidence_text": "Ticked the box on the fair's form",
            "evidence_file": upload,
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    row = ConsentRecord.objects.get(pk=response.json()["id"])
    assert row.evidence_file.name.startswith("consent-evidence/")
    with row.evidence_file.open("rb") as f:
        assert f.read() == b"%PDF-1.4 signed"
    assert "consent-evidence/" in response.json()["evidence_file"]


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("virus.exe", b"MZ....", "File type not accepted"),
        ("big.pdf", b"%PDF-" * 500, "too large"),
        ("renamed.pdf", b"MZ\x90\x00 not a pdf", "not a PDF file"),
        ("empty.txt", b"", "empty"),
    ],
)
def test_an_evidence_file_of_the_wrong_type_or_size_is_a_400(settings, name, data, message):
    settings.MAILWARDEN_CONSENT_EVIDENCE_MAX_BYTES = 1024
    contact = make_contact()
    response = crm_client().post(
        URL,
        {
            "contact": contact.pk,
            "basis": "consent",
            "evidence_file": SimpleUploadedFile(name, data),
        },
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["evidence_file"])
    assert not ConsentRecord.objects.exists()


def test_reading_needs_crm_read_and_recording_crm_write():
    contact = make_contact()
    reader = token_client([ApiToken.Scope.CRM_READ])
    assert reader.get(URL).status_code == 200
    assert reader.get(f"/api/v1/contacts/{contact.pk}/consent/").status_code == 200
    denied = reader.post(URL, {"contact": contact.pk, "basis": "consent"}, format="json")
    assert denied.status_code == 403
    assert "crm:write" in denied.json()["detail"]
    capture_only = token_client([ApiToken.Scope.CAPTURE_READ])
    assert capture_only.get(URL).status_code == 403
    assert capture_only.get(f"/api/v1/contacts/{contact.pk}/consent/").status_code == 403
    assert APIClient().get(URL).status_code == 401
    session = APIClient()
    session.force_login(make_user(is_staff=False))
    assert session.get(URL).status_code == 403
    assert not ConsentRecord.objects.exists()
