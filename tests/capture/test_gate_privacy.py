"""The gate's governance rules on real captures (PostgreSQL): privacy mode and legal basis,
withdrawn consent, private markers, never-log's address-free audit, per-batch preloading."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from capture.intake import RawSpec, store_raw_messages
from capture.models import EmailMessage, Participant, RawMessage, Thread, ThreadLink
from capture.pipeline import process_raw_messages
from crm.models import Contact
from governance.consent import record_consent
from governance.models import AuditEvent, UserSettings
from tests.capture.pipeline.helpers import capture, make_mail
from tests.factories import make_contact, make_never_log_rule, make_user, set_org_settings

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
OURS = "mailwarden-demo.com"


@pytest.fixture
def sam():
    set_org_settings(internal_domains=[OURS])
    return make_user(email=f"sam.seller@{OURS}")


def grant(contact, basis="contract"):
    record_consent(contact.pk, basis=basis, channel="admin")


def withdraw(contact):
    record_consent(contact.pk, basis="consent", action="withdrawn", channel="admin")


def outbound(n=1, to="tom@globex.test", cc="", **kw):
    return make_mail(
        message_id=f"<m{n}@{OURS}>",
        from_=f"Sam <sam.seller@{OURS}>",
        to=to,
        cc=cc,
        **kw,
    )


def participant(email, address) -> Participant:
    return Participant.objects.get(email=email, address=address)


def contact_links(email) -> set[int]:
    return set(
        ThreadLink.objects.filter(thread=email.thread, contact__isnull=False).values_list(
            "contact_id", flat=True
        )
    )


# --- privacy mode and legal basis --------------------------------------------------------------


def test_privacy_mode_links_only_participants_with_a_legal_basis_and_creates_no_contact(sam):
    set_org_settings(privacy_mode=True)
    tom = make_contact(emails=("tom@globex.test",))
    ann = make_contact(emails=("ann@globex.test",))
    grant(tom)
    _, outcome = capture(
        outbound(to="tom@globex.test", cc="ann@globex.test, new@globex.test"), user_id=sam.pk
    )
    assert outcome.status == Status.PROCESSED
    email = EmailMessage.objects.get()
    assert email.stored == EmailMessage.Stored.FULL
    assert participant(email, "tom@globex.test").contact_id == tom.pk
    for address in ("ann@globex.test", "new@globex.test"):
        p = participant(email, address)
        assert (p.match, p.gate_reason, p.contact_id) == ("suppressed", "no_legal_basis", None)
    assert contact_links(email) == {tom.pk}
    assert not Contact.objects.exclude(pk__in=[tom.pk, ann.pk]).exists()  # no auto-create
    assert ann.pk not in contact_links(email)


def test_without_privacy_mode_the_same_mail_links_everyone_and_creates_contacts(sam):
    tom = make_contact(emails=("tom@globex.test",))
    capture(outbound(to="tom@globex.test", cc="new@globex.test"), user_id=sam.pk)
    email = EmailMessage.objects.get()
    created = participant(email, "new@globex.test")
    assert created.match == "created" and created.gate_reason == ""
    assert contact_links(email) == {tom.pk, created.contact_id}


def test_privacy_mode_with_no_external_basis_stores_metadata_only_by_default(sam):
    set_org_settings(privacy_mode=True)
    make_contact(emails=("tom@globex.test",))
    capture(outbound(subject="Secret pricing", body="numbers"), user_id=sam.pk)
    email = EmailMessage.objects.get()
    assert email.stored == EmailMessage.Stored.METADATA
    assert (email.subject, email.text_body) == ("", "")
    assert email.thread.subject == ""  # the new thread keeps no subject either
    assert "privacy:no_legal_basis" in email.gate_reasons
    assert not ThreadLink.objects.exists()


def test_privacy_mode_with_no_external_basis_refuses_when_the_org_says_so(sam):
    set_org_settings(privacy_mode=True, no_basis_mail="skip")
    _, outcome = capture(outbound(), user_id=sam.pk)
    assert (outcome.status, outcome.reason_code) == (Status.REJECTED, "no_legal_basis")
    assert not EmailMessage.objects.exists()


def test_a_contact_whose_consent_is_withdrawn_stops_being_linked_from_that_moment(sam):
    tom = make_contact(emails=("tom@globex.test",))
    grant(tom)
    capture(outbound(1), user_id=sam.pk)
    first = EmailMessage.objects.get()
    assert contact_links(first) == {tom.pk}
    withdraw(tom)
    capture(outbound(2, subject="Another topic entirely"), user_id=sam.pk)
    second = EmailMessage.objects.exclude(pk=first.pk).get()
    p = participant(second, "tom@globex.test")
    assert (p.match, p.gate_reason, p.contact_id) == ("suppressed", "consent_withdrawn", None)
    assert contact_links(second) == set()
    assert contact_links(first) == {tom.pk}  # what was linked before stays (no retroactivity)


def test_the_batch_reads_the_consent_of_all_its_contacts_in_one_query(sam):
    set_org_settings(privacy_mode=True)
    specs = []
    for n in range(12):
        c = make_contact(emails=(f"p{n}@globex.test",))
        grant(c)
        specs.append(
            RawSpec(
                data=outbound(n, to=f"p{n}@globex.test", subject=f"Topic {n} alpha"),
                channel=RawMessage.Channel.API,
                user_id=sam.pk,
            )
        )
    raws = store_raw_messages(specs, enqueue=False)
    with CaptureQueriesContext(connection) as q:
        outcomes = process_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {Status.PROCESSED}
    consent = [x for x in q.captured_queries if "governance_consentrecord" in x["sql"]]
    settings = [x for x in q.captured_queries if "governance_usersettings" in x["sql"]]
    assert (len(consent), len(settings)) == (1, 1), [x["sql"][:300] for x in settings]
    assert Participant.objects.filter(match="matched").count() == 12


# --- private mail ---------------------------------------------------------------------------------


def assert_private(email, marker):
    assert email.private
    assert email.stored == EmailMessage.Stored.METADATA
    assert email.text_body == "" and email.subject == ""
    assert f"private:{marker}" in email.gate_reasons
    assert not ThreadLink.objects.filter(email=email).exists()


@pytest.mark.parametrize(
    ("kw", "marker"),
    [
        ({"subject": "[Private] my review"}, "subject_tag"),
        ({"extra_headers": ("Sensitivity: Private",)}, "sensitivity"),
        ({"extra_headers": ("Sensitivity: Company-Confidential",)}, "sensitivity"),
    ],
)
def test_a_private_marker_stores_metadata_only_in_a_private_thread_of_the_owner(sam, kw, marker):
    make_contact(emails=("tom@globex.test",))
    capture(outbound(**kw), user_id=sam.pk)
    email = EmailMessage.objects.get()
    assert_private(email, marker)
    assert email.thread.private and email.thread.owner_id == sam.pk
    assert email.thread.subject == ""


def test_the_subject_tags_are_the_orgs_setting(sam):
    set_org_settings(private_subject_tags=["#HR"])
    capture(outbound(1, subject="[private] no longer a tag"), user_id=sam.pk)
    capture(outbound(2, subject="Salary talk #hr"), user_id=sam.pk)
    plain, tagged = EmailMessage.objects.order_by("message_id")
    assert not plain.private
    assert_private(tagged, "subject_tag")


def test_private_mail_is_not_stored_when_the_org_says_so(sam):
    set_org_settings(private_mail="skip")
    _, outcome = capture(outbound(extra_headers=("Sensitivity: private",)), user_id=sam.pk)
    assert (outcome.status, outcome.reason_code) == (Status.REJECTED, "private")
    assert not EmailMessage.objects.exists()


def test_a_reply_into_a_thread_the_owner_marked_private_is_private(sam):
    make_contact(emails=("tom@globex.test",))
    capture(outbound(1), user_id=sam.pk)
    first = EmailMessage.objects.get()
    Thread.objects.filter(pk=first.thread_id).update(private=True)
    reply = make_mail(
        message_id="<r1@globex.test>",
        from_="Tom <tom@globex.test>",
        to=f"sam.seller@{OURS}",
        subject="Re: Delivery schedule for April",
        in_reply_to=f"<m1@{OURS}>",
    )
    capture(reply, user_id=sam.pk)
    second = EmailMessage.objects.exclude(pk=first.pk).get()
    assert second.thread_id == first.thread_id
    assert_private(second, "thread")


def test_private_by_default_makes_a_users_mail_private(sam):
    UserSettings.objects.create(user=sam, private_by_default=True)
    other = make_user(email=f"other@{OURS}")
    capture(outbound(1), user_id=sam.pk)
    capture(
        make_mail(message_id=f"<o1@{OURS}>", from_=f"other@{OURS}", to="x@globex.test"),
        user_id=other.pk,
    )
    mine = EmailMessage.objects.get(from_address=f"sam.seller@{OURS}")
    theirs = EmailMessage.objects.get(from_address=f"other@{OURS}")
    assert_private(mine, "user_default")
    assert not theirs.private


def test_private_by_default_enforced_by_the_org_overrides_the_users_choice(sam):
    set_org_settings(private_by_default=True, enforce_private_by_default=True)
    UserSettings.objects.create(user=sam, private_by_default=False)
    capture(outbound(1), user_id=sam.pk)
    assert_private(EmailMessage.objects.get(), "user_default")


def test_the_addins_private_flag_marks_the_capture_private(sam, api):
    import base64

    client = api(sam)
    body = {"mime_base64": base64.b64encode(outbound(1)).decode(), "private": True}
    response = client.post("/api/v1/captures/", body, format="json")
    assert response.status_code in (201, 202), response.content
    raw = RawMessage.objects.get()
    assert raw.options.get("private") is True
    process_raw_messages([raw.pk])
    assert_private(EmailMessage.objects.get(), "addin")


def test_the_addins_private_flag_must_be_a_boolean(sam, api):
    response = api(sam).post(
        "/api/v1/captures/", {"mime_base64": "eA==", "private": "maybe"}, format="json"
    )
    assert response.status_code == 400
    assert "private" in response.json()


# --- never-log ---------------------------------------------------------------------------------


def test_a_never_logged_mail_is_counted_and_audited_without_its_address(sam):
    make_never_log_rule("globex.test")
    _, outcome = capture(outbound(), user_id=sam.pk)
    assert (outcome.status, outcome.reason_code) == (Status.REJECTED, "never_log")
    assert RawMessage.objects.filter(reason_code="never_log").count() == 1
    events = AuditEvent.objects.filter(action="raw.rejected")
    assert events.count() == 1
    assert "globex" not in str(events.get().detail) and "globex" not in events.get().address
    assert not EmailMessage.objects.exists() and not Participant.objects.exists()
