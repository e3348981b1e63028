"""Resolving participants: contacts by exact normalised address (primary or secondary), the
review queue for shared addresses, auto-creation by policy, internal addresses, organizations
by contact or registrable domain (never free-mail), direction, and the thread's links."""

from __future__ import annotations

import pytest

from capture.models import EmailMessage, Participant, RawMessage, ReviewItem, ThreadLink
from crm.models import Contact, ContactEmail
from governance.models import OrgSettings
from tests.capture.pipeline.helpers import capture, fixture_bytes, make_mail, store
from tests.factories import (
    make_contact,
    make_organization,
    make_user,
    make_user_address,
    set_org_settings,
)

pytestmark = pytest.mark.django_db

Match = Participant.Match
Direction = EmailMessage.Direction
SAM = "sam.seller@mailwarden-demo.com"
JANE = "jane.doe@acme-widgets.com"
TOM = "tom.buyer@globex.co.uk"


def captured(data: bytes, user=None, **fields) -> EmailMessage:
    raw, outcome = capture(data, user_id=user.pk if user else None, **fields)
    assert outcome.status == RawMessage.Status.PROCESSED, (raw.reason_code, raw.traceback)
    return EmailMessage.objects.get(pk=outcome.email_id)


def by_address(email: EmailMessage) -> dict[str, Participant]:
    return {p.address: p for p in email.participants.all()}


def outbound_to(to: str, *, user=None, **kw) -> EmailMessage:
    """Sam (an internal user) writes to `to`."""
    return captured(
        make_mail(
            from_=f"Sam Seller <{SAM}>", to=to, message_id="<out-1@mailwarden-demo.com>", **kw
        ),
        user,
    )


@pytest.fixture
def sam():
    return make_user(email=SAM)


# --- exact matching ---------------------------------------------------------------------------


def test_an_address_matches_the_contact_whose_primary_address_it_is():
    jane = make_contact(emails=(JANE,))
    found = by_address(captured(fixture_bytes("multipart_alternative.eml")))[JANE]
    assert (found.match, found.contact_id) == (Match.MATCHED, jane.pk)
    assert found.role == Participant.Role.FROM


def test_an_address_matches_the_contact_whose_secondary_address_it_is():
    jane = make_contact(emails=("jane@private-mail.example", JANE))
    assert not ContactEmail.objects.get(address=JANE).is_primary
    found = by_address(captured(fixture_bytes("multipart_alternative.eml")))[JANE]
    assert (found.match, found.contact_id) == (Match.MATCHED, jane.pk)


def test_an_uppercase_address_in_the_mail_matches_the_normalised_contact_address():
    jane = make_contact(emails=(JANE,))
    email = captured(make_mail(from_="JANE DOE <Jane.Doe@ACME-Widgets.COM>"))
    found = by_address(email)[JANE]
    assert (found.match, found.contact_id) == (Match.MATCHED, jane.pk)


def test_a_unicode_domain_matches_the_contact_stored_in_idna_form():
    bjoern = make_contact(emails=("bjoern@xn--bcher-khler-xfb5e.de",))
    org = make_organization(domains=("xn--bcher-khler-xfb5e.de",))
    parts = by_address(captured(fixture_bytes("idna_domain.eml")))
    found = parts["bjoern@xn--bcher-khler-xfb5e.de"]
    assert (found.match, found.contact_id) == (Match.MATCHED, bjoern.pk)
    assert found.name == "Björn Köhler"
    assert parts["info@xn--bcher-khler-xfb5e.de"].organization_id == org.pk


def test_an_address_shared_by_several_contacts_is_ambiguous_and_goes_to_review():
    a = make_contact(emails=(JANE,))
    b = make_contact(emails=("other@acme-widgets.com", JANE))
    email = captured(fixture_bytes("multipart_alternative.eml"))
    found = by_address(email)[JANE]
    assert found.match == Match.AMBIGUOUS
    assert found.contact_id is None
    assert sorted(found.candidates) == sorted([a.pk, b.pk])
    review = ReviewItem.objects.get(participant=found)
    assert review.kind == ReviewItem.Kind.AMBIGUOUS_CONTACT
    assert review.status == ReviewItem.Status.OPEN
    assert sorted(review.candidates) == sorted([a.pk, b.pk])
    assert (review.email_id, review.thread_id) == (email.pk, email.thread_id)
    assert not ThreadLink.objects.filter(contact__in=[a, b]).exists()


# --- auto-creating contacts -------------------------------------------------------------------


def test_with_policy_never_an_unknown_address_stays_unmatched(sam):
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.NEVER)
    found = by_address(outbound_to(f"Tom Buyer <{TOM}>", user=sam))[TOM]
    assert (found.match, found.contact_id) == (Match.UNMATCHED, None)
    assert Contact.objects.count() == 0


def test_with_policy_sent_a_recipient_of_the_users_mail_becomes_a_contact(sam):
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.SENT)
    email = outbound_to(f'"Buyer, Tom" <{TOM}>', user=sam)
    assert email.direction == Direction.OUTBOUND
    found = by_address(email)[TOM]
    assert found.match == Match.CREATED
    contact = Contact.objects.get(pk=found.contact_id)
    assert (contact.first_name, contact.last_name) == ("Tom", "Buyer")
    assert contact.owner_id == sam.pk
    assert contact.marketing is False
    assert contact.source == Contact.Source.CAPTURE
    assert contact.primary_email == TOM


def test_with_policy_sent_the_sender_of_inbound_mail_does_not_become_a_contact(sam):
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.SENT)
    email = captured(fixture_bytes("reply_in_thread_1.eml"), sam)  # Tom -> Sam
    assert email.direction == Direction.INBOUND
    assert by_address(email)[TOM].match == Match.UNMATCHED
    assert Contact.objects.count() == 0


def test_with_policy_always_the_sender_of_inbound_mail_becomes_a_contact_owned_by_the_capturer(sam):
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    capturer = make_user()
    email = captured(fixture_bytes("reply_in_thread_1.eml"), capturer)
    found = by_address(email)[TOM]
    assert found.match == Match.CREATED
    contact = Contact.objects.get(pk=found.contact_id)
    assert contact.owner_id == capturer.pk
    assert (contact.marketing, contact.source) == (False, Contact.Source.CAPTURE)


def test_an_auto_created_contact_gets_the_organization_of_its_domain(sam):
    globex = make_organization(name="Globex", domains=("globex.co.uk",))
    found = by_address(outbound_to(TOM, user=sam))[TOM]
    assert found.match == Match.CREATED
    assert Contact.objects.get(pk=found.contact_id).organization_id == globex.pk
    assert found.organization_id == globex.pk


def test_two_messages_from_the_same_new_address_in_one_batch_create_one_contact(sam):
    from capture.pipeline import process_raw_messages

    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    raws = [
        store(make_mail(message_id=f"<new-{i}@globex.co.uk>", subject=f"Order {i} question"))
        for i in range(3)
    ]
    process_raw_messages([r.pk for r in raws])
    assert ContactEmail.objects.filter(address=TOM).count() == 1
    matches = list(Participant.objects.filter(address=TOM).values_list("match", flat=True))
    assert sorted(matches) == [Match.CREATED, Match.MATCHED, Match.MATCHED]


def test_contacts_created_from_mail_are_audited_once_each_under_crms_action_name(sam):
    from governance.models import AuditEvent

    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.SENT)
    found = by_address(outbound_to(f"Tom Buyer <{TOM}>, Ann <ann@globex.co.uk>", user=sam))
    created = {found[TOM].contact_id, found["ann@globex.co.uk"].contact_id}
    events = AuditEvent.objects.filter(action="crm.contact.created")
    assert {int(e.object_id) for e in events} == created
    assert all(e.detail == {"source": "capture"} for e in events)
    assert not AuditEvent.objects.filter(action="contact.created").exists()


def test_contacts_created_from_mail_tell_the_address_hooks_after_commit(
    sam, django_capture_on_commit_callbacks
):
    from crm.services import register_address_hook, unregister_address_hook

    told: list[list[str]] = []
    register_address_hook(told.append)
    try:
        set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.SENT)
        with django_capture_on_commit_callbacks(execute=True):
            outbound_to(f"Tom Buyer <{TOM}>", user=sam)
    finally:
        unregister_address_hook(told.append)
    assert [TOM] in told


def test_a_free_mail_address_becomes_a_contact_only_when_the_policy_allows_it(sam):
    set_org_settings(auto_create_from_free_mail=False)
    email = outbound_to("Priya <priya@gmail.com>", user=sam)
    assert by_address(email)["priya@gmail.com"].match == Match.UNMATCHED
    set_org_settings(auto_create_from_free_mail=True)
    email = captured(
        make_mail(from_=SAM, to="priya@gmail.com", message_id="<out-2@mailwarden-demo.com>"), sam
    )
    assert by_address(email)["priya@gmail.com"].match == Match.CREATED


def test_a_role_address_never_becomes_a_contact_even_when_everything_is_auto_created(sam):
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    for n, address in enumerate(
        ("noreply@globex.co.uk", "info@globex.co.uk", "billing@globex.co.uk")
    ):
        email = captured(
            make_mail(from_=SAM, to=address, message_id=f"<role-{n}@mailwarden-demo.com>"), sam
        )
        assert by_address(email)[address].match == Match.UNMATCHED, address


def test_a_local_part_added_to_the_role_list_in_settings_is_never_a_contact(sam):
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    email = outbound_to("purchasing@globex.co.uk", user=sam)
    assert by_address(email)["purchasing@globex.co.uk"].match == Match.CREATED
    set_org_settings(extra_role_local_parts=["purchasing"])
    email = captured(
        make_mail(
            from_=SAM, to="purchasing@acme.example", message_id="<role-x@mailwarden-demo.com>"
        ),
        sam,
    )
    assert by_address(email)["purchasing@acme.example"].match == Match.UNMATCHED


# --- internal addresses -----------------------------------------------------------------------


def test_a_users_login_address_is_internal_and_never_a_contact():
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    sam = make_user(email="Sam.Seller@mailwarden-demo.com")
    found = by_address(captured(fixture_bytes("reply_in_thread_1.eml")))[SAM]
    assert (found.match, found.user_id, found.contact_id) == (Match.INTERNAL, sam.pk, None)
    assert not ContactEmail.objects.filter(address=SAM).exists()


def test_a_users_alias_is_internal_and_never_a_contact():
    set_org_settings(auto_create_contacts=OrgSettings.AutoCreate.ALWAYS)
    sam = make_user(email="samuel@elsewhere.example")
    make_user_address(sam, SAM)
    found = by_address(captured(fixture_bytes("reply_in_thread_1.eml")))[SAM]
    assert (found.match, found.user_id) == (Match.INTERNAL, sam.pk)
    assert not ContactEmail.objects.filter(address=SAM).exists()


def test_an_address_in_an_internal_domain_is_internal_and_never_a_contact():
    set_org_settings(
        auto_create_contacts=OrgSettings.AutoCreate.ALWAYS, internal_domains=["mailwarden-demo.com"]
    )
    email = captured(
        make_mail(from_="Kim <kim@sales.mailwarden-demo.com>", to=TOM, message_id="<k1@x.test>")
    )
    found = by_address(email)["kim@sales.mailwarden-demo.com"]
    assert (found.match, found.user_id) == (Match.INTERNAL, None)
    assert email.direction == Direction.OUTBOUND
    assert not ContactEmail.objects.filter(address__endswith="mailwarden-demo.com").exists()


def test_an_internal_address_is_internal_even_when_a_contact_carries_it():
    make_user(email=SAM)
    make_contact(emails=(SAM,))
    found = by_address(captured(fixture_bytes("reply_in_thread_1.eml")))[SAM]
    assert (found.match, found.contact_id) == (Match.INTERNAL, None)


# --- organizations ----------------------------------------------------------------------------


def test_a_matched_contact_brings_its_own_organization_before_the_domain():
    own = make_organization(name="ACME Holding")
    make_organization(name="ACME by domain", domains=("acme-widgets.com",))
    make_contact(emails=(JANE,), organization=own)
    assert (
        by_address(captured(fixture_bytes("multipart_alternative.eml")))[JANE].organization_id
        == own.pk
    )


def test_an_unknown_address_finds_the_organization_of_its_registrable_domain():
    acme = make_organization(name="Acme UK", domains=("acme.co.uk",))
    email = captured(make_mail(from_="Lee <lee@mail.acme.co.uk>", message_id="<psl@acme.co.uk>"))
    found = by_address(email)["lee@mail.acme.co.uk"]
    assert (found.match, found.organization_id) == (Match.UNMATCHED, acme.pk)


def test_a_free_mail_domain_never_matches_an_organization():
    make_organization(name="Someone's mistake", domains=("gmail.com",))
    found = by_address(captured(fixture_bytes("bare_lf.eml")))["priya@gmail.com"]
    assert found.organization_id is None
    assert not ThreadLink.objects.filter(organization__isnull=False).exists()


# --- direction --------------------------------------------------------------------------------


def test_mail_from_outside_is_inbound(sam):
    assert captured(fixture_bytes("reply_in_thread_1.eml"), sam).direction == Direction.INBOUND


def test_mail_from_a_user_to_outside_is_outbound(sam):
    assert captured(fixture_bytes("reply_in_thread_2.eml"), sam).direction == Direction.OUTBOUND


def test_mail_between_users_only_is_internal(sam):
    set_org_settings(log_internal_mail=True)  # refused otherwise (test_gate_internal.py)
    make_user(email="kim@mailwarden-demo.com")
    email = captured(
        make_mail(from_=SAM, to="kim@mailwarden-demo.com", message_id="<i@x.test>"), sam
    )
    assert email.direction == Direction.INTERNAL


# --- thread links -----------------------------------------------------------------------------


def test_the_thread_is_linked_to_the_participants_contacts_and_organizations(sam):
    acme = make_organization(name="ACME", domains=("acme-widgets.com",))
    jane = make_contact(emails=(JANE,), organization=acme)
    email = captured(fixture_bytes("multipart_alternative.eml"), sam)
    links = ThreadLink.objects.filter(thread=email.thread)
    assert {(lk.contact_id, lk.organization_id, lk.source) for lk in links} == {
        (jane.pk, None, ThreadLink.Source.PARTICIPANT),
        (None, acme.pk, ThreadLink.Source.PARTICIPANT),
    }
    assert {lk.email_id for lk in links} == {email.pk}
