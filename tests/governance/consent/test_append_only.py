from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from crm.models import ApiToken
from governance.consent import record_consent
from governance.models import ConsentHistoryIsAppendOnly, ConsentRecord
from tests.crm.admin_helpers import superuser_client
from tests.crm.api_helpers import token_client
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def recorded() -> ConsentRecord:
    return record_consent(make_contact().pk, basis="consent", channel="api", source="web form")


def test_a_recorded_row_cannot_be_saved_again_or_deleted_through_the_model():
    row = recorded()
    row.basis = "contract"
    with pytest.raises(ConsentHistoryIsAppendOnly):
        row.save()
    with pytest.raises(ConsentHistoryIsAppendOnly):
        row.delete()
    with pytest.raises(ConsentHistoryIsAppendOnly):
        ConsentRecord.objects.filter(pk=row.pk).update(basis="contract")
    with pytest.raises(ConsentHistoryIsAppendOnly):
        ConsentRecord.objects.filter(pk=row.pk).delete()
    assert ConsentRecord.objects.get(pk=row.pk).basis == "consent"


@pytest.mark.postgres
def test_the_database_refuses_update_and_delete_behind_the_applications_back():
    row = recorded()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE governance_consentrecord SET basis = 'contract' WHERE id = %s", [row.pk]
            )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("DELETE FROM governance_consentrecord WHERE id = %s", [row.pk])
    assert ConsentRecord.objects.get(pk=row.pk).basis == "consent"


@pytest.mark.postgres
def test_only_an_erasure_transaction_may_delete_rows_on_postgresql():
    row = recorded()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL mailwarden.consent_erasure = 'on'")
        cur.execute("DELETE FROM governance_consentrecord WHERE id = %s", [row.pk])
    assert not ConsentRecord.objects.filter(pk=row.pk).exists()


def test_the_api_has_no_update_or_delete():
    row = recorded()
    client = token_client([ApiToken.Scope.CRM_READ, ApiToken.Scope.CRM_WRITE])
    url = f"/api/v1/consents/{row.pk}/"
    assert client.put(url, {"basis": "contract"}, format="json").status_code == 405
    assert client.patch(url, {"basis": "contract"}, format="json").status_code == 405
    assert client.delete(url).status_code == 405
    assert ConsentRecord.objects.get(pk=row.pk).basis == "consent"


def test_the_admin_shows_existing_rows_read_only_and_deletes_nothing():
    row = recorded()
    client, _ = superuser_client()
    base = "/admin/governance/consentrecord"
    page = client.get(f"{base}/{row.pk}/change/")
    assert page.status_code == 200
    assert 'name="basis"' not in page.content.decode()  # shown, not editable
    changed = client.post(
        f"{base}/{row.pk}/change/",
        {
            "contact": row.contact_id,
            "purpose": "processing",
            "basis": "contract",
            "action": "granted",
        },
    )
    assert changed.status_code == 403
    assert client.post(f"{base}/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    listing = client.post(f"{base}/", {"action": "delete_selected", "_selected_action": [row.pk]})
    assert listing.status_code in (200, 302)
    assert ConsentRecord.objects.get(pk=row.pk).basis == "consent"


def test_deleting_a_contact_keeps_its_consent_history():
    row = recorded()
    contact = row.contact
    contact.emails.all().delete()
    contact.delete()
    assert ConsentRecord.objects.filter(pk=row.pk).exists()
