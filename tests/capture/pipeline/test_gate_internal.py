"""Internal-only mail is refused unless the organisation logs it, and an unverified connected
address or alias counts neither as the user's own nor as internal."""

from __future__ import annotations

import pytest

from capture.models import EmailMessage, RawMessage
from crm.models import UserAddress
from tests.capture.pipeline.helpers import capture, fixture_bytes, make_mail
from tests.factories import make_capture_address, make_user, make_user_address, set_org_settings

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
SAM = "sam.seller@mailwarden-demo.com"
KIM = "kim@mailwarden-demo.com"


def reason(outcome) -> tuple[str, str]:
    return (outcome.status, outcome.reason_code)


@pytest.fixture
def internal_domain():
    set_org_settings(internal_domains=["mailwarden-demo.com"])


def test_mail_whose_participants_are_all_internal_is_refused_by_default(internal_domain):
    sam = make_user(email=SAM)
    _, outcome = capture(make_mail(from_=SAM, to=KIM, message_id="<int-1@x.test>"), user_id=sam.pk)
    assert reason(outcome) == (Status.REJECTED, "internal_only")
    assert not EmailMessage.objects.exists()


def test_internal_only_mail_is_logged_when_the_organisation_turns_it_on(internal_domain):
    set_org_settings(log_internal_mail=True)
    sam = make_user(email=SAM)
    _, outcome = capture(make_mail(from_=SAM, to=KIM, message_id="<int-2@x.test>"), user_id=sam.pk)
    assert reason(outcome) == (Status.PROCESSED, "")
    email = EmailMessage.objects.get(pk=outcome.email_id)
    assert email.direction == EmailMessage.Direction.INTERNAL


def test_one_external_participant_makes_the_mail_loggable(internal_domain):
    sam = make_user(email=SAM)
    mail = make_mail(from_=SAM, to=KIM, cc="tom.buyer@globex.co.uk", message_id="<int-3@x.test>")
    _, outcome = capture(mail, user_id=sam.pk)
    assert reason(outcome) == (Status.PROCESSED, "")


def test_a_users_verified_alias_counts_as_internal_and_an_unverified_one_does_not():
    sam = make_user(email=SAM)
    make_user_address(sam, "sam@sam-personal.example")
    kim = make_user(email=KIM)
    pending = make_user_address(kim, "kim@kim-personal.example")
    UserAddress.objects.filter(pk=pending.pk).update(verified_at=None)
    mail = make_mail(
        from_="sam@sam-personal.example", to="kim@kim-personal.example", message_id="<a@x.test>"
    )
    _, outcome = capture(mail, user_id=sam.pk)
    assert reason(outcome) == (Status.PROCESSED, "")  # Kim's unverified alias is external
    UserAddress.objects.filter(pk=pending.pk).update(verified_at="2025-01-01T00:00:00Z")
    _, outcome = capture(mail.replace(b"<a@x.test>", b"<b@x.test>"), user_id=sam.pk)
    assert reason(outcome) == (Status.REJECTED, "internal_only")


def test_a_bcc_from_an_unverified_alias_is_refused():
    user = make_user(email="samuel@mailwarden-demo.com")
    alias = make_user_address(user, SAM)
    UserAddress.objects.filter(pk=alias.pk).update(verified_at=None)
    address = make_capture_address(user)
    _, outcome = capture(
        fixture_bytes("nested_multipart.eml"),
        RawMessage.Channel.SMTP,
        user_id=user.pk,
        capture_address_id=address.pk,
        envelope_to=[address.address],
    )
    assert reason(outcome) == (Status.REJECTED, "sender_not_allowed")


def test_a_capture_address_among_the_recipients_does_not_make_internal_mail_external(
    internal_domain,
):
    sam = make_user(email=SAM)
    address = make_capture_address(sam)
    mail = make_mail(from_=SAM, to=KIM, cc=address.address, message_id="<int-4@x.test>")
    _, outcome = capture(mail, user_id=sam.pk)
    assert reason(outcome) == (Status.REJECTED, "internal_only")
