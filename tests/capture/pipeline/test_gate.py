"""The governance gate: never-log lists, who may submit mail to a capture address, drafts,
auto-generated mail, mailbox visibility and quarantine."""

from __future__ import annotations

import pytest

from capture.models import Attachment, Capture, EmailMessage, MailboxConnection, Meeting, RawMessage
from capture.operations import retry_raw_messages
from governance.models import AuditEvent, OrgSettings
from tests.capture.pipeline.helpers import capture, fixture_bytes
from tests.factories import (
    make_capture_address,
    make_mailbox,
    make_never_log_rule,
    make_user,
    make_user_address,
    set_org_settings,
)

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
SAM = "sam.seller@mailwarden-demo.com"


def reason(outcome) -> tuple[str, str]:
    return (outcome.status, outcome.reason_code)


# --- never-log lists --------------------------------------------------------------------------


def test_an_org_wide_never_log_address_refuses_the_mail():
    make_never_log_rule("jane.doe@acme-widgets.com")
    raw, outcome = capture(fixture_bytes("multipart_alternative.eml"), user_id=make_user().pk)
    assert reason(outcome) == (Status.REJECTED, "never_log")
    assert raw.reason_code == "never_log"
    assert EmailMessage.objects.count() == 0


def test_a_never_log_address_refuses_the_mail_when_it_is_only_a_cc_recipient():
    make_never_log_rule("procurement@acme-widgets.com")
    _, outcome = capture(fixture_bytes("multipart_alternative.eml"))
    assert reason(outcome) == (Status.REJECTED, "never_log")


def test_a_never_log_rule_compares_addresses_case_insensitively():
    make_never_log_rule("Jane.Doe@ACME-Widgets.com")
    _, outcome = capture(fixture_bytes("multipart_alternative.eml"))
    assert reason(outcome) == (Status.REJECTED, "never_log")


def test_an_org_wide_never_log_domain_refuses_mail_from_its_subdomains_too():
    make_never_log_rule("acme-widgets.com")
    _, direct = capture(fixture_bytes("multipart_alternative.eml"))
    _, subdomain = capture(fixture_bytes("mailing_list.eml"))  # news@lists.acme-widgets.com
    _, other = capture(fixture_bytes("base64_and_qp.eml"))  # initech.de
    assert reason(direct) == (Status.REJECTED, "never_log")
    assert reason(subdomain) == (Status.REJECTED, "never_log")
    assert reason(other) == (Status.PROCESSED, "")


def test_a_personal_never_log_rule_refuses_only_that_users_captures():
    careful, colleague = make_user(), make_user()
    make_never_log_rule("initech.de", user=careful)
    data = fixture_bytes("base64_and_qp.eml")
    _, mine = capture(data, user_id=careful.pk)
    _, theirs = capture(data, user_id=colleague.pk)
    assert reason(mine) == (Status.REJECTED, "never_log")
    assert reason(theirs) == (Status.PROCESSED, "")
    assert theirs.duplicate is False
    assert list(Capture.objects.values_list("user_id", flat=True)) == [colleague.pk]


def test_a_colleagues_earlier_capture_does_not_bypass_a_personal_never_log_rule():
    careful, colleague = make_user(), make_user()
    make_never_log_rule("bernd.becker@initech.de", user=careful)
    data = fixture_bytes("base64_and_qp.eml")
    _, theirs = capture(data, user_id=colleague.pk)
    _, mine = capture(data, RawMessage.Channel.IMAP, user_id=careful.pk)
    assert reason(theirs) == (Status.PROCESSED, "")
    assert reason(mine) == (Status.REJECTED, "never_log")
    assert not Capture.objects.filter(user=careful).exists()


# --- who may submit mail to a capture address -------------------------------------------------


def submitted(user, data: bytes, *, envelope_from: str = "", **extra):
    address = make_capture_address(user)
    return capture(
        data,
        RawMessage.Channel.SMTP,
        user_id=user.pk,
        capture_address_id=address.pk,
        envelope_to=[address.address],
        envelope_from=envelope_from,
        **extra,
    )


def test_a_bcc_from_someone_who_is_not_the_user_is_refused_on_the_smtp_channel():
    user = make_user(email="alice@mailwarden-demo.com")
    # nested_multipart.eml is From: sam.seller@..., BCC'd to Alice's capture address
    _raw, outcome = submitted(user, fixture_bytes("nested_multipart.eml"))
    assert reason(outcome) == (Status.REJECTED, "sender_not_allowed")
    assert EmailMessage.objects.count() == 0


def test_a_bcc_from_the_users_login_email_is_captured():
    user = make_user(email="Sam.Seller@mailwarden-demo.com")
    _, outcome = submitted(user, fixture_bytes("nested_multipart.eml"), envelope_from=SAM)
    assert reason(outcome) == (Status.PROCESSED, "")


def test_a_bcc_from_one_of_the_users_aliases_is_captured():
    user = make_user(email="samuel@mailwarden-demo.com")
    make_user_address(user, SAM)
    _, outcome = submitted(user, fixture_bytes("nested_multipart.eml"))
    assert reason(outcome) == (Status.PROCESSED, "")


def test_another_users_alias_does_not_make_the_sender_allowed():
    owner = make_user(email="samuel@mailwarden-demo.com")
    make_user_address(owner, SAM)
    intruder = make_user(email="mallory@mailwarden-demo.com")
    _, outcome = submitted(intruder, fixture_bytes("nested_multipart.eml"))
    assert reason(outcome) == (Status.REJECTED, "sender_not_allowed")


def test_a_forged_envelope_sender_is_refused_even_with_the_users_from_header():
    user = make_user(email=SAM)
    _, outcome = submitted(
        user, fixture_bytes("nested_multipart.eml"), envelope_from="spoofer@evil.test"
    )
    assert reason(outcome) == (Status.REJECTED, "sender_not_allowed")


def test_a_stored_message_id_does_not_let_a_stranger_add_a_capture_through_the_bcc_address():
    colleague = make_user()
    data = fixture_bytes("nested_multipart.eml")
    capture(data, RawMessage.Channel.IMAP, user_id=colleague.pk)
    victim = make_user(email="victim@mailwarden-demo.com")
    _, outcome = submitted(victim, data)
    assert reason(outcome) == (Status.REJECTED, "sender_not_allowed")
    assert not Capture.objects.filter(user=victim).exists()


def test_the_sender_check_applies_only_to_mail_submitted_to_a_capture_address():
    user = make_user(email="alice@mailwarden-demo.com")
    _, outcome = capture(
        fixture_bytes("nested_multipart.eml"), RawMessage.Channel.API, user_id=user.pk
    )
    assert reason(outcome) == (Status.PROCESSED, "")


# --- drafts and auto-generated mail -----------------------------------------------------------


def test_a_draft_is_never_captured():
    raw, outcome = capture(fixture_bytes("draft.eml"), user_id=make_user().pk)
    assert reason(outcome) == (Status.REJECTED, "draft")
    assert raw.reason_detail
    assert EmailMessage.objects.count() == 0


@pytest.mark.parametrize("name", ["out_of_office.eml", "dsn.eml", "mailing_list.eml"])
def test_auto_generated_mail_is_refused_when_the_org_skips_it(name):
    set_org_settings(auto_generated_mail=OrgSettings.AutoGenerated.SKIP)
    _, outcome = capture(fixture_bytes(name))
    assert reason(outcome) == (Status.REJECTED, "auto_generated")
    assert EmailMessage.objects.count() == 0


def test_auto_generated_mail_is_stored_and_flagged_when_the_org_stores_it():
    set_org_settings(auto_generated_mail=OrgSettings.AutoGenerated.STORE)
    _, outcome = capture(fixture_bytes("out_of_office.eml"))
    assert reason(outcome) == (Status.PROCESSED, "")
    email = EmailMessage.objects.get(pk=outcome.email_id)
    assert email.auto_generated == "ooo"
    assert "auto_generated:ooo" in email.gate_reasons


def test_skipping_auto_generated_mail_does_not_refuse_a_person_written_mail():
    set_org_settings(auto_generated_mail=OrgSettings.AutoGenerated.SKIP)
    _, outcome = capture(fixture_bytes("multipart_alternative.eml"))
    assert reason(outcome) == (Status.PROCESSED, "")


# --- mailbox visibility -----------------------------------------------------------------------


def synced(visibility: str, name: str):
    owner = make_user()
    box = make_mailbox(owner, visibility=visibility)
    _, outcome = capture(
        fixture_bytes(name), RawMessage.Channel.IMAP, user_id=owner.pk, mailbox_id=box.pk
    )
    assert reason(outcome) == (Status.PROCESSED, "")
    return EmailMessage.objects.get(pk=outcome.email_id)


def test_a_metadata_only_mailbox_stores_neither_subject_nor_bodies_nor_files():
    email = synced(MailboxConnection.Visibility.METADATA, "rfc2047_rfc2231.eml")
    assert email.stored == EmailMessage.Stored.METADATA
    assert (email.subject, email.text_body, email.html_body) == ("", "", "")
    assert email.headers == []
    assert "visibility:metadata" in email.gate_reasons
    atts = Attachment.objects.filter(email=email)
    assert atts.count() == 3
    assert {a.dropped for a in atts} == {Attachment.Dropped.POLICY}
    assert not atts.filter(blob__isnull=False).exists()
    # who wrote to whom is still known
    assert email.from_address == "j.mueller@initech.de"
    assert email.participants.count() == 3


def test_a_metadata_only_mailbox_keeps_no_meeting_summary_or_location():
    email = synced(MailboxConnection.Visibility.METADATA, "calendar_invite.eml")
    meeting = Meeting.objects.get(emails=email)
    assert (meeting.summary, meeting.location) == ("", "")
    assert meeting.start is not None


def test_a_subject_only_mailbox_stores_the_subject_but_no_bodies():
    email = synced(MailboxConnection.Visibility.SUBJECT, "multipart_alternative.eml")
    assert email.stored == EmailMessage.Stored.SUBJECT
    assert email.subject == "Quote for 500 blue widgets"
    assert (email.text_body, email.html_body) == ("", "")


def test_a_mailbox_with_full_visibility_stores_everything():
    email = synced(MailboxConnection.Visibility.EVERYTHING, "multipart_alternative.eml")
    assert email.stored == EmailMessage.Stored.FULL
    assert "500 blue widgets" in email.text_body
    assert email.headers


# --- quarantine -------------------------------------------------------------------------------


def test_a_quarantined_message_is_held_until_an_admin_releases_it(
    django_capture_on_commit_callbacks,
):
    admin = make_user(role="admin")
    raw, outcome = capture(
        fixture_bytes("multipart_alternative.eml"), options={"quarantine": "dmarc=fail"}
    )
    assert reason(outcome) == (Status.REJECTED, "quarantined")
    assert EmailMessage.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        assert retry_raw_messages([raw.pk], actor=admin) == 1
    raw.refresh_from_db()
    assert (raw.status, raw.reason_code) == (Status.REJECTED, "quarantined")

    with django_capture_on_commit_callbacks(execute=True):
        assert retry_raw_messages([raw.pk], actor=admin, release_quarantine=True) == 1
    raw.refresh_from_db()
    assert (raw.status, raw.reason_code) == (Status.PROCESSED, "")
    assert raw.email.message_id == "CAF1a2b3c4d5e6@mail.acme-widgets.com"
    assert AuditEvent.objects.filter(action="raw.retried", actor_user=admin).count() == 2


def test_a_rejected_message_retried_after_the_rule_is_lifted_is_captured(
    django_capture_on_commit_callbacks,
):
    rule = make_never_log_rule("acme-widgets.com")
    raw, outcome = capture(fixture_bytes("multipart_alternative.eml"))
    assert reason(outcome) == (Status.REJECTED, "never_log")
    rule.delete()
    with django_capture_on_commit_callbacks(execute=True):
        retry_raw_messages([raw.pk], actor=make_user(role="admin"))
    raw.refresh_from_db()
    assert raw.status == Status.PROCESSED
