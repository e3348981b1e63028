"""Redaction leaves no body or attachment, anonymisation no address or name, in any table
(a pg_dump of the whole database is searched) or file (the storage folders are searched)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from django.conf import settings
from django.db import connection

from capture.models import Attachment, EmailMessage, Meeting, MeetingMessage, Participant
from capture.purge import pseudonym, purge_expired
from capture.retention import recompute
from tests.capture.retention.helpers import capture, mail, policy, referenced_files, stored_files
from tests.services import require_service

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = "carol.secret@hushmail.example"
NAME = "Carolyn Zebedee"
BODY = "The quarterly figures are QZX-SECRET-BODY-77."
ATTACHMENT = b"%PDF-1.4 QZX-SECRET-ATTACHMENT-91 contact " + ADDRESS.encode()
PLAIN_ATTACHMENT = b"%PDF-1.4 QZX-PLAIN-ATTACHMENT-55"


def dump_database() -> str:
    require_service(shutil.which("pg_dump") is not None, "pg_dump")
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    out = subprocess.run(
        ["pg_dump", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432),
         "-U", db["USER"], "--data-only", db["NAME"]],
        env=env, capture_output=True, check=True,
    )  # fmt: skip
    return out.stdout.decode("utf-8", "replace")


def storage_text() -> bytes:
    """Every stored file's bytes as they lie in the store (local folders or the S3 bucket)."""
    from tests.filestore import stored_objects

    return b"".join(stored_objects().values())


def files_in_clear() -> bool:
    """Without master keys files are stored as received, so the search has something to find
    before; with them nothing readable is there in the first place."""
    return not settings.MAILWARDEN_MASTER_KEYS


def _the_mail() -> EmailMessage:
    data = mail(
        "secret-1@x.example",
        frm=f"{NAME} <{ADDRESS}>",
        subject=f"Figures for {NAME}",
        body=f"{BODY}\n\nOn Monday {NAME} <{ADDRESS}> wrote:\n> hello",
        attachment=ATTACHMENT,
    )
    email = capture(data)
    assert Attachment.objects.filter(email=email, blob__isnull=False).count() == 1
    meeting = Meeting.objects.create(
        uid="m@x", organizer=ADDRESS, attendees=[{"address": ADDRESS, "name": NAME}]
    )
    MeetingMessage.objects.create(meeting=meeting, email=email)
    return email


def _other_mail_sharing_nothing() -> EmailMessage:
    return capture(
        mail(
            "other@x.example",
            frm="Dan <dan@else.example>",
            subject="Else",
            body="Hi",
            attachment=PLAIN_ATTACHMENT,
        )
    )


@pytest.mark.postgres
def test_redaction_leaves_no_body_or_attachment_anywhere():
    email = _the_mail()
    other = _other_mail_sharing_nothing()
    assert "QZX-SECRET-BODY-77" in dump_database()
    if files_in_clear():
        assert b"QZX-SECRET-ATTACHMENT-91" in storage_text()
    policy("redact", duration_days=30, action="redact", directions=[email.direction])
    EmailMessage.objects.filter(pk=other.pk).update(direction="internal")
    recompute()
    run = purge_expired()
    assert run.counts and sum(n for by in run.counts.values() for n in by.values()) == 1
    dump, files = dump_database(), storage_text()
    assert "QZX-SECRET-BODY-77" not in dump
    assert b"QZX-SECRET-BODY-77" not in files and b"QZX-SECRET-ATTACHMENT-91" not in files
    email.refresh_from_db()
    assert (email.text_body, email.html_body, email.stored) == ("", "", "metadata")
    assert email.subject == f"Figures for {NAME}"  # metadata kept
    att = email.attachments.get()
    assert att.blob is None and att.dropped == "policy" and att.filename == "offer.pdf"
    assert b"QZX-PLAIN-ATTACHMENT-55" in files or not files_in_clear()  # the other keeps its own
    assert stored_files() == referenced_files()


@pytest.mark.postgres
def test_anonymisation_leaves_no_address_or_name_anywhere():
    email = _the_mail()
    _other_mail_sharing_nothing()
    assert ADDRESS in dump_database()
    policy("anonymise", duration_days=30, action="anonymise", categories=[], stored_levels=["full"])
    recompute()
    purge_expired()
    dump, files = dump_database(), storage_text()
    leaks = [
        line[:200] for line in dump.lower().splitlines() if ADDRESS in line or NAME.lower() in line
    ]
    assert leaks == []
    assert ADDRESS.encode() not in files.lower()
    # stable pseudonyms in place of the address
    p = Participant.objects.get(email=email, role="from")
    assert p.address == pseudonym(ADDRESS) == pseudonym(ADDRESS.upper())
    email.refresh_from_db()
    assert pseudonym(ADDRESS) in email.text_body and "QZX-SECRET-BODY-77" in email.text_body
    assert email.from_address == pseudonym(ADDRESS)
    assert b"QZX-PLAIN-ATTACHMENT-55" in files or not files_in_clear()
    assert stored_files() == referenced_files()
