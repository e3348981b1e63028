"""governance.eligibility.recipient_verdicts: one rule per test, on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.consent import record_consent
from governance.eligibility import recipient_verdicts
from governance.models import UserSettings
from tests.factories import (
    make_contact,
    make_never_log_rule,
    make_user,
    make_user_address,
    set_org_settings,
)

pytestmark = pytest.mark.django_db


def grant(contact, basis="contract"):
    record_consent(contact.pk, basis=basis, channel="admin")


def withdraw(contact):
    record_consent(contact.pk, basis="consent", action="withdrawn", channel="admin")


def tracking(contact, action):
    record_consent(contact.pk, purpose="tracking", basis="consent", action=action, channel="admin")


@pytest.fixture
def user():
    set_org_settings(internal_domains=["ourco.test"], track_by_default=True)
    return make_user()


def one(user, address):
    return recipient_verdicts(user, [address])[address]


def test_an_org_wide_never_log_address_may_be_neither_logged_nor_tracked(user):
    c = make_contact(emails=("ann@client.test",))
    grant(c)
    make_never_log_rule("ann@client.test")
    v = one(user, "ann@client.test")
    assert (v.may_log, v.log_reason, v.may_track, v.track_reason) == (
        False,
        "never_log",
        False,
        "never_log",
    )
    assert v.contact_ids == (c.pk,)


def test_a_never_logged_domain_covers_its_subdomains(user):
    make_never_log_rule("client.test")
    assert one(user, "bob@eu.client.test").log_reason == "never_log"


def test_a_personal_never_log_rule_applies_to_its_user_alone(user):
    other = make_user()
    make_never_log_rule("hr.test", user=other)
    assert one(user, "x@hr.test").may_log is True
    assert one(other, "x@hr.test").log_reason == "never_log"


@pytest.mark.parametrize("log_internal", [False, True])
def test_internal_addresses_follow_log_internal_mail_and_are_never_tracked(user, log_internal):
    set_org_settings(log_internal_mail=log_internal)
    colleague = make_user(email="Colleague@Elsewhere.test")
    make_user_address(colleague, "alias@other.test").__class__.objects.update(
        verified_at="2026-01-01T00:00:00Z"
    )
    for address in ("dev@ourco.test", "colleague@elsewhere.test", "alias@other.test"):
        v = one(user, address)
        assert v.internal, address
        assert (v.may_log, v.log_reason) == (log_internal, "internal")
        assert (v.may_track, v.track_reason) == (False, "internal")


def test_withdrawn_processing_consent_stops_logging_even_without_privacy_mode(user):
    c = make_contact(emails=("ann@client.test",))
    grant(c)
    withdraw(c)
    v = one(user, "ann@client.test")
    assert (v.may_log, v.log_reason, v.may_track) == (False, "consent_withdrawn", False)
    assert v.basis is None


def test_under_privacy_mode_an_address_without_a_basis_is_neither_logged_nor_tracked(user):
    set_org_settings(privacy_mode=True)
    make_contact(emails=("nobasis@client.test",))
    for address in ("nobasis@client.test", "stranger@client.test"):
        v = one(user, address)
        assert (v.may_log, v.log_reason, v.may_track, v.track_reason) == (
            False,
            "no_legal_basis",
            False,
            "no_legal_basis",
        )


def test_without_privacy_mode_an_address_without_a_basis_is_logged(user):
    make_contact(emails=("nobasis@client.test",))
    v = one(user, "nobasis@client.test")
    assert (v.may_log, v.log_reason, v.basis) == (True, "ok", None)


def test_under_privacy_mode_a_basis_allows_logging_and_tracking_needs_granted_consent(user):
    set_org_settings(privacy_mode=True)
    c = make_contact(emails=("ann@client.test",))
    grant(c, "legitimate_interest_customer")
    v = one(user, "ann@client.test")
    assert (v.may_log, v.basis) == (True, "legitimate_interest_customer")
    assert (v.may_track, v.track_reason) == (False, "no_tracking_consent")
    tracking(c, "granted")
    v = one(user, "ann@client.test")
    assert (v.may_track, v.track_reason) == (True, "ok")


def test_refused_tracking_consent_stops_tracking_in_any_mode(user):
    c = make_contact(emails=("ann@client.test",))
    assert one(user, "ann@client.test").may_track is True  # unknown is enough without privacy
    tracking(c, "refused")
    v = one(user, "ann@client.test")
    assert (v.may_log, v.may_track, v.track_reason) == (True, False, "tracking_refused")


def test_tracking_follows_the_users_effective_track_setting(user):
    make_contact(emails=("ann@client.test",))
    UserSettings.objects.create(user=user, track=False)
    v = one(user, "ann@client.test")
    assert (v.may_log, v.may_track, v.track_reason) == (True, False, "tracking_off")
    set_org_settings(enforce_track=True)  # the org's default (on) wins over the choice
    assert one(user, "ann@client.test").may_track is True


def test_a_non_contact_is_logged_but_not_tracked(user):
    v = one(user, "stranger@client.test")
    assert (v.may_log, v.may_track, v.track_reason, v.contact_ids) == (
        True,
        False,
        "not_a_contact",
        (),
    )


def test_an_address_of_several_contacts_answers_for_the_strictest(user):
    set_org_settings(privacy_mode=True)
    a = make_contact(emails=("shared@client.test",))
    b = make_contact(emails=("shared@client.test",))
    grant(a)
    assert one(user, "shared@client.test").log_reason == "no_legal_basis"
    grant(b)
    v = one(user, "shared@client.test")
    assert v.may_log and v.contact_ids == tuple(sorted((a.pk, b.pk)))
    withdraw(b)
    assert one(user, "shared@client.test").log_reason == "consent_withdrawn"


def test_an_invalid_address_is_answered_not_raised(user):
    v = one(user, "not an address")
    assert (v.may_log, v.log_reason) == (False, "invalid_address")


def test_addresses_are_matched_normalised_and_answered_as_given(user):
    make_never_log_rule("ann@client.test")
    assert recipient_verdicts(user, ["Ann@Client.TEST"])["Ann@Client.TEST"].log_reason == (
        "never_log"
    )


def test_the_consent_bases_are_read_in_one_query_for_all_addresses(user):
    set_org_settings(privacy_mode=True)
    addresses = []
    for n in range(20):
        c = make_contact(emails=(f"p{n}@client.test",))
        grant(c)
        addresses.append(f"p{n}@client.test")
    with CaptureQueriesContext(connection) as q:
        verdicts = recipient_verdicts(user, addresses)
    assert all(v.may_log for v in verdicts.values())
    consent_queries = [x for x in q.captured_queries if "governance_consentrecord" in x["sql"]]
    assert len(consent_queries) == 1
    assert len(q.captured_queries) <= 8
