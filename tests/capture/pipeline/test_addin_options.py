"""What the user chose in the add-in: records to link (source "addin", made by the user),
categories, and which attachments to keep."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from capture.mime import parse_email
from capture.models import Attachment, Category, EmailMessage, RawMessage, ThreadLink
from governance.models import AuditEvent
from tests.capture.pipeline.helpers import capture, fixture_bytes
from tests.factories import make_contact, make_item, make_organization, make_user

pytestmark = pytest.mark.django_db

Status = RawMessage.Status
Dropped = Attachment.Dropped
ADDIN = ThreadLink.Source.ADDIN


@pytest.fixture(autouse=True)
def _categories():
    """The names the tests choose are admin-defined categories (capture/categories.py)."""
    Category.objects.bulk_create([Category(name=n) for n in ("pricing", "Q2 forecast", "renewal")])


def saved(user, name: str, **options):
    raw, outcome = capture(
        fixture_bytes(name), RawMessage.Channel.ADDIN, user_id=user.pk, options=options
    )
    assert outcome.status == Status.PROCESSED, (raw.reason_code, raw.traceback)
    return EmailMessage.objects.select_related("thread").get(pk=outcome.email_id), outcome


def links_of(email: EmailMessage) -> set[tuple]:
    return set(
        ThreadLink.objects.filter(thread_id=email.thread_id).values_list(
            "contact_id", "organization_id", "item_id", "source", "created_by_id"
        )
    )


def test_records_chosen_in_the_addin_are_linked_to_the_thread_by_the_user():
    user = make_user()
    contact, org = make_contact(), make_organization()
    deal = make_item(title="Globex 500 widgets")
    ticket = make_item(kind="ticket", title="Damaged pallet")
    email, _ = saved(
        user,
        "base64_and_qp.eml",
        links={"contacts": [contact.pk], "organizations": [org.pk], "items": [deal.pk, ticket.pk]},
    )
    assert links_of(email) == {
        (contact.pk, None, None, ADDIN, user.pk),
        (None, org.pk, None, ADDIN, user.pk),
        (None, None, deal.pk, ADDIN, user.pk),
        (None, None, ticket.pk, ADDIN, user.pk),
    }
    assert set(ThreadLink.objects.values_list("email_id", flat=True)) == {email.pk}


def test_chosen_ids_that_no_longer_exist_are_ignored():
    user = make_user()
    gone = make_contact()
    gone_id = gone.pk
    gone.delete()
    email, outcome = saved(user, "base64_and_qp.eml", links={"contacts": [gone_id, "x"]})
    assert outcome.status == Status.PROCESSED
    assert links_of(email) == set()


def test_a_chosen_contact_that_is_also_a_participant_is_recorded_as_the_users_choice():
    user = make_user()
    jane = make_contact(emails=("jane.doe@acme-widgets.com",))
    email, _ = saved(user, "multipart_alternative.eml", links={"contacts": [jane.pk]})
    assert links_of(email) == {(jane.pk, None, None, ADDIN, user.pk)}


def test_saving_an_already_captured_mail_again_links_the_newly_chosen_records():
    bcc_user, addin_user = make_user(), make_user()
    capture(fixture_bytes("base64_and_qp.eml"), RawMessage.Channel.SMTP, user_id=bcc_user.pk)
    deal = make_item(title="Initech price list")
    email, outcome = saved(addin_user, "base64_and_qp.eml", links={"items": [deal.pk]})
    assert outcome.duplicate is True
    assert EmailMessage.objects.count() == 1
    assert (None, None, deal.pk, ADDIN, addin_user.pk) in links_of(email)


def test_categories_chosen_in_the_addin_are_stored_on_the_message():
    email, _ = saved(make_user(), "base64_and_qp.eml", categories=["pricing", "Q2 forecast"])
    assert email.categories == ["pricing", "Q2 forecast"]


def test_chosen_names_that_are_no_category_are_dropped_when_the_mail_is_processed():
    email, _ = saved(make_user(), "base64_and_qp.eml", categories=["pricing", "made up"])
    assert email.categories == ["pricing"]


def test_a_category_deactivated_after_the_capture_was_accepted_is_still_stored():
    raw_choice = ["renewal"]
    Category.objects.filter(name="renewal").update(active=False)
    email, _ = saved(make_user(), "base64_and_qp.eml", categories=raw_choice)
    assert email.categories == ["renewal"]


def test_mail_saved_without_categories_has_none():
    email, _ = saved(make_user(), "base64_and_qp.eml")
    assert email.categories == []


def attachments_of(email: EmailMessage) -> dict[str, Attachment]:
    return {a.filename: a for a in Attachment.objects.filter(email=email)}


def test_only_the_attachments_selected_by_filename_are_kept():
    email, _ = saved(make_user(), "rfc2047_rfc2231.eml", attachments=["Preisübersicht Größen.xlsx"])
    atts = attachments_of(email)
    assert atts["Preisübersicht Größen.xlsx"].dropped == Dropped.KEPT
    assert atts["Preisübersicht Größen.xlsx"].blob is not None
    for name in ("Lieferbedingungen Änderung.pdf", "notes.txt"):
        assert atts[name].dropped == Dropped.NOT_SELECTED
        assert atts[name].blob is None


def test_attachments_can_be_selected_by_sha256():
    data = fixture_bytes("rfc2047_rfc2231.eml")
    parts = parse_email(data, received_at=datetime.now(UTC)).attachments
    pdf = next(p for p in parts if p.filename.endswith(".pdf"))
    email, _ = saved(make_user(), "rfc2047_rfc2231.eml", attachments=[pdf.sha256])
    atts = attachments_of(email)
    assert atts["Lieferbedingungen Änderung.pdf"].dropped == Dropped.KEPT
    assert atts["Lieferbedingungen Änderung.pdf"].sha256 == pdf.sha256
    assert atts["notes.txt"].dropped == Dropped.NOT_SELECTED
    assert atts["Preisübersicht Größen.xlsx"].dropped == Dropped.NOT_SELECTED


def test_an_empty_selection_keeps_no_attachment_but_still_logs_the_mail():
    email, _ = saved(make_user(), "rfc2047_rfc2231.eml", attachments=[])
    assert {a.dropped for a in attachments_of(email).values()} == {Dropped.NOT_SELECTED}
    assert email.text_body


def test_without_a_selection_every_attachment_policy_allows_is_kept():
    email, _ = saved(make_user(), "rfc2047_rfc2231.eml")
    assert {a.dropped for a in attachments_of(email).values()} == {Dropped.KEPT}


def test_a_selected_attachment_is_still_dropped_when_policy_blocks_it(settings):
    settings.MAILWARDEN_MAX_ATTACHMENT_BYTES = 100
    email, _ = saved(
        make_user(), "rfc2047_rfc2231.eml", attachments=["Lieferbedingungen Änderung.pdf"]
    )
    assert attachments_of(email)["Lieferbedingungen Änderung.pdf"].dropped == Dropped.TOO_LARGE


def test_saving_an_already_captured_mail_again_adds_the_newly_chosen_categories():
    first, second = make_user(), make_user()
    saved(first, "base64_and_qp.eml", categories=["pricing", "Q2 forecast"])
    email, outcome = saved(second, "base64_and_qp.eml", categories=["Q2 forecast", "renewal"])
    assert outcome.duplicate is True
    email.refresh_from_db()
    assert email.categories == ["pricing", "Q2 forecast", "renewal"]
    event = AuditEvent.objects.get(action="email.categorised")
    assert event.detail["added"] == ["renewal"]
    # Saved a third time with nothing new: no change, no event.
    saved(second, "base64_and_qp.eml", categories=["pricing"])
    assert AuditEvent.objects.filter(action="email.categorised").count() == 1
