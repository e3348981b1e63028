"""Data-subject requests end to end: access archive (once, for the requester, encrypted),
erasure (deleted where he was the only external participant, pseudonymised elsewhere, contact
and consent history gone, tombstone kept), objection (never-log + consent withdrawn), the API's
validation and permissions, and the management command."""

from __future__ import annotations

import io
import json

import pytest
import pyzipper
from django.core.management import call_command

from capture import dsr
from capture.models import Attachment, DataSubjectRequest, EmailMessage, ErasedAddress, Participant
from crm.models import ApiToken, Contact, User
from governance.consent import current_basis, record_consent
from governance.models import AuditEvent, ConsentRecord, NeverLogRule
from governance.pseudonyms import keyed_hash, pseudonym_address
from tests.capture.dsr.mail import JANE, TOM, TOM_NAME, subject_mail
from tests.crm.api_helpers import token_client
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/data-subject-requests/"
ADMIN = ApiToken.Scope.GOVERNANCE_ADMIN


def officer() -> User:
    return make_user(role=User.Role.COMPLIANCE, is_staff=True)


def run(django_capture_on_commit_callbacks, client, body) -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_access_archive_holds_everything_about_the_address_once_for_the_requester(
    django_capture_on_commit_callbacks,
):
    tom = make_contact(emails=(TOM,), first_name="Tom", last_name="Buyer")
    record_consent(tom.pk, basis="contract", channel="api", source="order 17")
    mail = subject_mail()
    from django.utils import timezone

    from capture.models import TrackedMessage, TrackingEvent

    tracked = TrackedMessage.objects.create(
        message_id=mail["alone"].message_id,
        sender=make_user(),
        mode="recipient",
        expires_at=timezone.now() + timezone.timedelta(days=1),
    )
    TrackingEvent.objects.create(tracked=tracked, kind="open")
    client = token_client([ADMIN], user=officer())
    created = run(django_capture_on_commit_callbacks, client, {"kind": "access", "address": TOM})
    password = created["password"]
    assert len(password) >= 20
    req = DataSubjectRequest.objects.get(pk=created["id"])
    assert req.state == "completed" and req.password_enc == ""  # the password is not kept
    assert req.counts["messages"] == 3 and req.counts["consents"] == 1

    detail = client.get(f"{URL}{req.pk}/").json()
    assert "password" not in detail and detail["archive_ready"] is True

    other = token_client([ADMIN], user=officer())
    assert other.post(f"{URL}{req.pk}/archive/").status_code == 403  # not the requester

    response = client.post(f"{URL}{req.pk}/archive/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    blob = response.content
    with pyzipper.AESZipFile(io.BytesIO(blob)) as zf:
        with pytest.raises(RuntimeError):
            zf.read("subject.json")  # no password, no data
        zf.setpassword(password.encode())
        data = json.loads(zf.read("subject.json"))
        emls = [n for n in zf.namelist() if n.endswith(".eml")]
        assert all(TOM.encode() in zf.read(n).lower() for n in emls)
    assert TOM.encode() not in blob  # encrypted, not just zipped
    assert {m["id"] for m in data["messages"]} == {
        mail["alone"].pk,
        mail["shared"].pk,
        mail["card"].pk,
    }
    assert len(emls) == 3
    assert [c["id"] for c in data["contacts"]] == [tom.pk]
    assert data["consents"][0]["source"] == "order 17"
    assert {p["address"] for p in data["participants"]} == {TOM}
    assert any(e["action"] == "consent.recorded" for e in data["audit_events"])
    assert [e["kind"] for e in data["tracking_events"]] == ["open"]

    again = client.post(f"{URL}{req.pk}/archive/")
    assert again.status_code == 409 and again.json()["code"] == "archive_unavailable"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"dsr.created", "dsr.completed", "dsr.archive.downloaded"} <= actions


def test_erasure_deletes_solo_mail_pseudonymises_shared_mail_and_keeps_a_tombstone(
    django_capture_on_commit_callbacks,
):
    tom = make_contact(emails=(TOM,), first_name="Tom", last_name="Buyer")
    record_consent(tom.pk, basis="contract", channel="api", source="order 17")
    mail = subject_mail()
    client = token_client([ADMIN], user=officer())
    created = run(django_capture_on_commit_callbacks, client, {"kind": "erasure", "address": TOM})
    req = DataSubjectRequest.objects.get(pk=created["id"])
    assert req.state == "completed", req.error
    assert req.address == ""  # the request itself forgets him
    assert req.address_hash == keyed_hash(TOM)
    assert req.counts["messages_deleted"] == 1
    assert req.counts["anonymised_messages"] == 2
    assert req.counts["dropped_attachments"] == 1
    assert req.counts["contacts_deleted"] == 1
    assert req.counts["consent_records_deleted"] == 1
    assert req.retained == []

    assert not EmailMessage.objects.filter(pk=mail["alone"].pk).exists()
    shared = EmailMessage.objects.get(pk=mail["shared"].pk)
    alias = pseudonym_address(TOM)
    assert shared.from_address == alias
    assert TOM not in shared.text_body.lower() and TOM_NAME not in shared.text_body
    assert TOM_NAME not in shared.subject
    assert TOM not in json.dumps(shared.headers).lower()
    assert {p.address for p in shared.participants.all()} >= {alias, JANE}
    assert not Participant.objects.filter(address=TOM).exists()
    assert Attachment.objects.get(email=mail["card"]).dropped == "erased"
    assert EmailMessage.objects.filter(pk=mail["other"].pk).exists()
    assert not Contact.objects.filter(pk=tom.pk).exists()
    assert not ConsentRecord.objects.filter(contact_id=tom.pk).exists()
    assert ErasedAddress.objects.filter(address_hash=keyed_hash(TOM)).exists()
    tombstone = AuditEvent.objects.get(action="dsr.completed")
    assert tombstone.detail["address_hash"] == keyed_hash(TOM)
    assert TOM not in json.dumps(tombstone.detail)
    assert dsr.is_erased([TOM]) and not dsr.is_erased([JANE])


def test_objection_stops_logging_and_withdraws_consent(django_capture_on_commit_callbacks):
    tom = make_contact(emails=(TOM,))
    record_consent(tom.pk, basis="legitimate_interest_customer", channel="api")
    client = token_client([ADMIN], user=officer())
    created = run(django_capture_on_commit_callbacks, client, {"kind": "objection", "address": TOM})
    req = DataSubjectRequest.objects.get(pk=created["id"])
    assert req.state == "completed"
    rule = NeverLogRule.objects.get(value=TOM, user=None)
    assert f"#{req.pk}" in rule.note
    assert not current_basis(tom.pk).has_basis
    withdrawn = ConsentRecord.objects.filter(contact_id=tom.pk, action="withdrawn")
    assert set(withdrawn.values_list("channel", "purpose")) == {("dsr", "processing")}
    refused = ConsentRecord.objects.get(contact_id=tom.pk, purpose="tracking")
    assert refused.action == "refused" and refused.channel == "dsr"


def test_bad_input_is_a_400_and_members_may_not_ask():
    client = token_client([ADMIN], user=officer())
    response = client.post(URL, {"kind": "erasure", "address": "not an address"}, format="json")
    assert response.status_code == 400 and "address" in response.json()
    response = client.post(URL, {"kind": "forget", "address": TOM}, format="json")
    assert response.status_code == 400 and "kind" in response.json()
    member = token_client([ApiToken.Scope.CAPTURE_READ])
    assert member.get(URL).status_code == 403
    assert member.post(URL, {"kind": "access", "address": TOM}, format="json").status_code == 403
    assert not DataSubjectRequest.objects.exists()


def test_the_command_runs_an_erasure_and_an_access_request(tmp_path):
    user = officer()
    subject_mail()
    out = io.StringIO()
    archive = tmp_path / "tom.zip"
    call_command(
        "data_subject_request", "access", TOM, "--user", user.username, "--out", str(archive),
        "--no-progress", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    password = out.getvalue().rsplit("password: ", 1)[1].strip()
    with pyzipper.AESZipFile(archive) as zf:
        zf.setpassword(password.encode())
        assert len(json.loads(zf.read("subject.json"))["messages"]) == 3
    out = io.StringIO()
    call_command(
        "data_subject_request", "erasure", TOM, "--user", user.username, "--no-progress",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    assert "completed" in out.getvalue()
    assert not Participant.objects.filter(address=TOM).exists()


def test_expired_archives_are_deleted(django_capture_on_commit_callbacks):
    subject_mail()
    user = officer()
    req, _ = dsr.create_request("access", TOM, requested_by=user)
    req = dsr.run_request(req.pk)
    path = dsr.archive_root() / req.archive_path
    assert path.exists()
    DataSubjectRequest.objects.filter(pk=req.pk).update(
        archive_expires_at=req.created.replace(year=2000)
    )
    assert dsr.expire_archives() == 1
    assert not path.exists()
    with pytest.raises(dsr.ArchiveUnavailable):
        dsr.take_archive(DataSubjectRequest.objects.get(pk=req.pk), user)


def test_mail_of_an_erased_address_is_refused_from_then_on(django_capture_on_commit_callbacks):
    from capture.models import RawMessage
    from tests.capture.pipeline.helpers import capture, make_mail

    subject_mail()
    req, _ = dsr.create_request("erasure", TOM, requested_by=officer())
    assert dsr.run_request(req.pk).state == "completed"
    raw, _ = capture(
        make_mail(message_id="<later@globex.co.uk>", from_=f"{TOM_NAME} <{TOM.upper()}>")
    )
    assert raw.status == RawMessage.Status.REJECTED and raw.reason_code == "erased"
    assert not Participant.objects.filter(address=TOM).exists()
    # someone else's mail still comes in
    raw, _ = capture(make_mail(message_id="<jane2@acme-widgets.com>", from_=f"Jane <{JANE}>"))
    assert raw.status == RawMessage.Status.PROCESSED


def test_erasure_leaves_held_mail_alone_and_reports_it_with_the_holds_reason():
    from capture.models import LegalHold

    tom = make_contact(emails=(TOM,), first_name="Tom", last_name="Buyer")
    mail = subject_mail()
    hold = LegalHold.objects.create(name="Acme v. Globex", reason="Litigation 2026-17")
    hold.threads.add(mail["shared"].thread)
    req, _ = dsr.create_request("erasure", TOM, requested_by=officer())
    req = dsr.run_request(req.pk)
    assert req.state == "completed", req.error
    held = EmailMessage.objects.get(pk=mail["shared"].pk)
    assert held.from_address == TOM  # untouched
    assert not EmailMessage.objects.filter(pk=mail["alone"].pk).exists()
    assert EmailMessage.objects.get(pk=mail["card"].pk).from_address == pseudonym_address(TOM)
    assert Contact.objects.filter(pk=tom.pk).exists()  # linked to held mail
    assert req.counts["messages_retained"] == 1 and req.counts["contacts_deleted"] == 0
    assert {
        "what": "messages",
        "count": 1,
        "hold": "Acme v. Globex",
        "reason": "Litigation 2026-17",
    } in req.retained
    assert any(r["what"] == "contacts" and r["count"] == 1 for r in req.retained)
