from __future__ import annotations

import json

import pytest

from crm.models import Contact
from governance.consent import current_basis, record_consent
from governance.models import AuditEvent, ConsentRecord
from tests.crm.admin_helpers import import_csv, superuser_client
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

CSV = (
    "external_id,first_name,last_name,emails,legal_basis,legal_basis_source,tracking_consent\n"
    "x-1,Ann,Lee,ann@acme.com,legitimate_interest_customer,CRM migration 2025,refused\n"
    "x-2,Bo,Ng,bo@acme.com,,,\n"
    "x-3,Cy,Oh,cy@acme.com,Consent,,granted\n"
)


def test_the_contact_import_writes_consent_history_and_audit_with_channel_import():
    client, admin_user = superuser_client()
    first, confirmed = import_csv(client, Contact, CSV)
    assert confirmed is not None and confirmed.status_code == 302, first.content[:2000]
    ann = Contact.objects.get(external_id="x-1")
    bo = Contact.objects.get(external_id="x-2")
    cy = Contact.objects.get(external_id="x-3")
    ann_state, cy_state = current_basis(ann.pk), current_basis(cy.pk)
    assert (ann_state.basis, ann_state.tracking) == ("legitimate_interest_customer", "refused")
    assert ann_state.basis_provenance.source == "CRM migration 2025"
    assert ann_state.basis_provenance.channel == "import"
    assert ann_state.basis_provenance.recorded_by_id == admin_user.pk
    assert (cy_state.basis, cy_state.tracking) == ("consent", "granted")
    assert not ConsentRecord.objects.filter(contact_id=bo.pk).exists()
    assert ConsentRecord.objects.count() == 4
    events = AuditEvent.objects.filter(action="consent.recorded")
    assert events.count() == 4
    assert set(events.values_list("channel", flat=True)) == {"import"}


def test_importing_the_same_file_twice_adds_no_history():
    client, _ = superuser_client()
    import_csv(client, Contact, CSV)
    import_csv(client, Contact, CSV)
    assert ConsentRecord.objects.count() == 4


def test_an_import_that_changes_the_basis_appends_a_row():
    contact = make_contact(external_id="x-7")
    record_consent(contact.pk, basis="consent", channel="api")
    client, _ = superuser_client()
    _, confirmed = import_csv(client, Contact, "external_id,legal_basis\nx-7,contract\n")
    assert confirmed is not None
    assert current_basis(contact.pk).basis == "contract"
    assert ConsentRecord.objects.filter(contact_id=contact.pk).count() == 2


def test_a_bad_consent_column_is_the_rows_error_and_the_import_writes_nothing():
    client, _ = superuser_client()
    csv = (
        "external_id,first_name,legal_basis,tracking_consent\n"
        "x-1,Ann,contract,\n"
        "x-2,Bo,because,\n"
        "x-3,Cy,,maybe\n"
    )
    first, confirmed = import_csv(client, Contact, csv)
    assert confirmed is None
    result = first.context["result"]
    assert [r.number for r in result.invalid_rows] == [2, 3]
    page = first.content.decode()
    assert "Use one of consent, contract" in page
    assert "Use granted or refused" in page
    assert not Contact.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_the_import_preview_writes_no_history():
    client, _ = superuser_client()
    first, _ = import_csv(client, Contact, CSV, confirm=False)
    assert first.status_code == 200
    assert not first.context["result"].has_errors()
    assert not ConsentRecord.objects.exists()
    assert not AuditEvent.objects.filter(action="consent.recorded").exists()


def test_adding_a_row_in_the_admin_records_it_through_the_service_with_audit():
    contact = make_contact()
    client, admin_user = superuser_client()
    response = client.post(
        "/admin/governance/consentrecord/add/",
        {
            "contact": contact.pk,
            "purpose": "processing",
            "basis": "vital_interests",
            "action": "granted",
            "effective_at_0": "2025-01-02",
            "effective_at_1": "10:00:00",
            "source": "phone call",
            "evidence_text": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    row = ConsentRecord.objects.get()
    assert (row.basis, row.channel, row.recorded_by_id) == (
        "vital_interests",
        "admin",
        admin_user.pk,
    )
    event = AuditEvent.objects.get(action="consent.recorded")
    assert (event.channel, event.object_id, event.address) == ("admin", str(row.pk), "203.0.113.9")


def test_the_admin_add_form_rejects_a_bad_combination():
    contact = make_contact()
    client, _ = superuser_client()
    response = client.post(
        "/admin/governance/consentrecord/add/",
        {
            "contact": contact.pk,
            "purpose": "tracking",
            "basis": "contract",
            "action": "granted",
            "effective_at_0": "2025-01-02",
            "effective_at_1": "10:00:00",
        },
    )
    assert response.status_code == 200
    assert "Tracking rests on consent only" in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_the_contact_page_shows_the_current_basis_and_history():
    contact = make_contact()
    record_consent(contact.pk, basis="contract", channel="api", source="order 77")
    record_consent(contact.pk, purpose="tracking", basis="consent", channel="api")
    client, _ = superuser_client()
    page = client.get(f"/admin/crm/contact/{contact.pk}/change/").content.decode()
    assert "Legal basis and consent" in page
    assert "Performance of a contract" in page
    assert "order 77" in page
    assert f"/admin/governance/consentrecord/add/?contact={contact.pk}" in page
    assert f"?contact__id__exact={contact.pk}" in page


def test_the_admin_list_filters_and_searches_by_contact():
    a = make_contact(last_name="Quint")
    b = make_contact(last_name="Rook", emails=("rook@castle.example", "r2@castle.example"))
    record_consent(a.pk, basis="contract", channel="api")
    record_consent(b.pk, basis="consent", channel="api")
    client, _ = superuser_client()
    page = client.get("/admin/governance/consentrecord/", {"q": "Quint"})
    assert page.status_code == 200
    assert [r.contact_id for r in page.context["cl"].result_list] == [a.pk]
    by_address = client.get("/admin/governance/consentrecord/", {"q": "Rook@Castle.example"})
    assert [r.contact_id for r in by_address.context["cl"].result_list] == [b.pk]
    filtered = client.get("/admin/governance/consentrecord/", {"basis__exact": "consent"})
    assert [r.contact_id for r in filtered.context["cl"].result_list] == [b.pk]


def test_consent_audit_events_hold_no_personal_data():
    contact = make_contact(first_name="Zelda", emails=("zelda@private.example",))
    record_consent(
        contact.pk,
        basis="consent",
        channel="api",
        source="Zelda's signup at zelda@private.example",
        evidence_text="Zelda typed yes",
    )
    event = AuditEvent.objects.get(action="consent.recorded")
    text = json.dumps(event.detail) + event.object_id + event.actor_label
    assert "zelda" not in text.lower()
    assert "private.example" not in text
    assert event.detail == {
        "contact_id": contact.pk,
        "purpose": "processing",
        "basis": "consent",
        "action": "granted",
        "channel": "api",
        "future": False,
        "evidence_file": False,
    }


def test_the_admin_add_page_offers_the_contact_it_was_opened_for():
    contact = make_contact()
    client, _ = superuser_client()
    page = client.get("/admin/governance/consentrecord/add/", {"contact": contact.pk})
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["contact"] == str(contact.pk)
    assert 'name="evidence_file"' in page.content.decode()


def test_a_contact_without_history_shows_no_basis_and_unknown_tracking_on_its_page():
    contact = make_contact()
    client, _ = superuser_client()
    page = client.get(f"/admin/crm/contact/{contact.pk}/change/").content.decode()
    assert "Legal basis: <strong>No legal basis</strong>" in page
    assert "Tracking consent: <strong>unknown</strong>" in page
