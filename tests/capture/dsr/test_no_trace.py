"""After an erasure, a dump of the whole database and every file of the store are searched for
the address and the name it came with: nothing may be left (no legal hold here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from capture import dsr
from capture.models import EmailMessage
from crm.models import User
from governance.consent import record_consent
from tests.capture.dsr.mail import JANE, TOM, TOM_NAME, subject_mail
from tests.factories import make_contact, make_user
from tests.services import require_service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def database_dump() -> bytes:
    require_service(shutil.which("pg_dump") is not None, "pg_dump")
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    cmd = ["pg_dump", "--data-only", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)]
    cmd += ["-U", db["USER"] or "postgres", db["NAME"]]
    return subprocess.run(cmd, env=env, capture_output=True, check=True).stdout


def stored_files() -> dict[str, bytes]:
    """Every file under the media folder and in the raw and blob stores (local or S3)."""
    from tests.filestore import stored_objects

    root = Path(settings.MEDIA_ROOT)
    found = {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return found | stored_objects()


def test_no_trace_of_the_address_in_any_table_or_file():
    if connection.vendor != "postgresql":
        pytest.skip("the database dump needs PostgreSQL")
    tom = make_contact(emails=(TOM,), first_name="Tom", last_name="Buyer")
    record_consent(tom.pk, basis="consent", channel="api", evidence_text=f"Form from {TOM}")
    mail = subject_mail()
    needles = [TOM.encode(), TOM_NAME.encode()]
    before = database_dump().lower()
    assert all(n.lower() in before for n in needles)  # the search would find him
    if not settings.MAILWARDEN_MASTER_KEYS:  # in clear: the search would find him
        assert any(TOM.encode() in data.lower() for data in stored_files().values())

    officer = make_user(role=User.Role.COMPLIANCE)
    req, _ = dsr.create_request("erasure", TOM, requested_by=officer)
    req = dsr.run_request(req.pk)
    assert req.state == "completed", req.error

    dump = database_dump().lower()
    for needle in needles:
        assert needle.lower() not in dump, f"{needle!r} left in the database"
    for path, data in stored_files().items():
        for needle in needles:
            assert needle.lower() not in data.lower(), f"{needle!r} left in {path}"
    # the rest is still there
    assert JANE.encode() in dump
    assert EmailMessage.objects.filter(pk=mail["other"].pk).exists()
