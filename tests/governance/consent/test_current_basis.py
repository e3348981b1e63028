from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.consent import ConsentRejected, current_bases, current_basis, record_consent
from governance.models import ConsentRecord
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def days_ago(n: float):
    return timezone.now() - timedelta(days=n)


def test_a_contact_without_history_has_no_basis_and_unknown_tracking():
    contact = make_contact()
    state = current_basis(contact.pk)
    assert state.basis == "none"
    assert not state.has_basis
    assert state.tracking == "unknown"
    assert state.basis_provenance is None and state.tracking_provenance is None


def test_a_granted_basis_is_current_with_the_provenance_of_its_row():
    contact = make_contact()
    row = record_consent(
        contact.pk,
        basis="legitimate_interest_prospect",
        effective_at=days_ago(3),
        channel="api",
        source="trade fair",
    )
    state = current_basis(contact.pk)
    assert state.basis == "legitimate_interest_prospect"
    assert state.basis_provenance.record_id == row.pk
    assert state.basis_provenance.source == "trade fair"
    assert state.basis_provenance.channel == "api"


def test_consent_granted_then_withdrawn_leaves_no_basis():
    contact = make_contact()
    record_consent(contact.pk, basis="consent", effective_at=days_ago(5), channel="api")
    withdrawal = record_consent(
        contact.pk, basis="consent", action="withdrawn", effective_at=days_ago(1), channel="api"
    )
    state = current_basis(contact.pk)
    assert state.basis == "none"
    assert state.basis_provenance.record_id == withdrawal.pk
    assert state.basis_provenance.action == "withdrawn"


def test_a_contract_recorded_after_a_withdrawn_consent_is_the_basis():
    contact = make_contact()
    record_consent(contact.pk, basis="consent", effective_at=days_ago(5), channel="api")
    record_consent(
        contact.pk, basis="consent", action="withdrawn", effective_at=days_ago(3), channel="api"
    )
    record_consent(contact.pk, basis="contract", effective_at=days_ago(1), channel="api")
    assert current_basis(contact.pk).basis == "contract"


def test_a_row_effective_in_the_future_is_not_yet_the_basis():
    contact = make_contact()
    record_consent(contact.pk, basis="consent", effective_at=days_ago(2), channel="api")
    record_consent(
        contact.pk,
        basis="consent",
        action="withdrawn",
        effective_at=timezone.now() + timedelta(days=7),
        channel="api",
    )
    assert current_basis(contact.pk).basis == "consent"
    assert current_basis(contact.pk, at=timezone.now() + timedelta(days=8)).basis == "none"


def test_a_row_recorded_later_wins_a_tie_on_effective_at():
    contact = make_contact()
    when = days_ago(1)
    record_consent(contact.pk, basis="contract", effective_at=when, channel="api")
    later = record_consent(contact.pk, basis="legal_obligation", effective_at=when, channel="api")
    state = current_basis(contact.pk)
    assert state.basis == "legal_obligation"
    assert state.basis_provenance.record_id == later.pk


def test_a_backdated_row_recorded_later_does_not_override_a_newer_effective_one():
    contact = make_contact()
    record_consent(contact.pk, basis="contract", effective_at=days_ago(1), channel="api")
    record_consent(contact.pk, basis="consent", effective_at=days_ago(10), channel="import")
    assert current_basis(contact.pk).basis == "contract"


def test_tracking_consent_is_kept_apart_from_the_legal_basis():
    contact = make_contact()
    record_consent(contact.pk, basis="contract", effective_at=days_ago(4), channel="api")
    record_consent(
        contact.pk, purpose="tracking", basis="consent", effective_at=days_ago(3), channel="api"
    )
    refusal = record_consent(
        contact.pk,
        purpose="tracking",
        basis="consent",
        action="refused",
        effective_at=days_ago(2),
        channel="admin",
    )
    state = current_basis(contact.pk)
    assert state.basis == "contract"
    assert state.tracking == "refused"
    assert state.tracking_provenance.record_id == refusal.pk
    assert state.tracking_provenance.channel == "admin"


def test_tracking_refusal_does_not_take_away_the_legal_basis_nor_the_reverse():
    contact = make_contact()
    record_consent(contact.pk, purpose="tracking", basis="consent", channel="api")
    assert current_basis(contact.pk).basis == "none"
    assert current_basis(contact.pk).tracking == "granted"


def test_bad_combinations_are_rejected_with_the_field_named():
    contact = make_contact()
    cases = [
        ({"basis": "gut_feeling"}, "basis"),
        ({"basis": "consent", "purpose": "marketing"}, "purpose"),
        ({"basis": "consent", "action": "refused"}, "action"),
        ({"basis": "contract", "purpose": "tracking"}, "basis"),
        ({"basis": "consent", "purpose": "tracking", "action": "withdrawn"}, "action"),
        ({"basis": "consent", "source": "x" * 201}, "source"),
        ({"basis": "consent", "effective_at": timezone.now().replace(tzinfo=None)}, "effective_at"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConsentRejected) as caught:
            record_consent(contact.pk, channel="api", **kwargs)
        assert field in caught.value.errors, (kwargs, caught.value.errors)
    assert not ConsentRecord.objects.exists()


def test_every_asked_contact_gets_an_answer_and_each_its_own_state():
    a, b, c = make_contact(), make_contact(), make_contact()
    record_consent(a.pk, basis="contract", channel="api")
    record_consent(b.pk, basis="consent", channel="api")
    record_consent(b.pk, purpose="tracking", basis="consent", channel="api")
    states = current_bases([a.pk, b.pk, c.pk])
    assert {k: (v.basis, v.tracking) for k, v in states.items()} == {
        a.pk: ("contract", "unknown"),
        b.pk: ("consent", "granted"),
        c.pk: ("none", "unknown"),
    }
    assert current_bases([]) == {}


@pytest.mark.parametrize("how_many", [1, 500])
def test_the_bulk_lookup_takes_one_query_for_any_number_of_contacts(
    how_many, django_assert_max_num_queries
):
    contacts = [make_contact() for _ in range(how_many)]
    rows = []
    for i, contact in enumerate(contacts):
        rows.append(
            ConsentRecord(
                contact=contact,
                basis="consent",
                channel="import",
                effective_at=days_ago(2),
            )
        )
        rows.append(
            ConsentRecord(
                contact=contact,
                basis="consent",
                action="withdrawn" if i % 2 else "granted",
                channel="import",
                effective_at=days_ago(1),
            )
        )
    ConsentRecord.objects.bulk_create(rows)
    ids = [c.pk for c in contacts]
    with django_assert_max_num_queries(1):
        states = current_bases(ids)
    assert len(states) == how_many
    assert [states[i].basis for i in ids] == [
        "none" if n % 2 else "consent" for n in range(how_many)
    ]
