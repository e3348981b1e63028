"""The whole capture pipeline on every file store (local / S3 on loopback, clear / encrypted):
API and SMTP ingest, processing, attachment download, deletion. More existing tests run on
another store with `pytest --file-store=s3-encrypted ...` (tests/filestore.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from capture import storage
from capture.intake import RawSpec
from capture.models import Attachment, DataKey, RawMessage
from capture.pipeline import process_raw_messages
from capture.removal import unlink_files as _unlink
from capture.smtp.writer import store_durably
from crm.models import ApiToken
from tests.capture.storage.conftest import stored_files
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    _, key = ApiToken.issue(user=user, name="t", scopes=["capture:write", "capture:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_api_and_smtp_ingest_processing_and_attachment_download(file_store, mail_fixture):
    user = make_user()
    client = client_for(user)
    api_data = mail_fixture("nested_multipart.eml")
    smtp_data = mail_fixture("multipart_alternative.eml")
    res = client.post("/api/v1/captures/", data=api_data, content_type="message/rfc822")
    assert res.status_code == 202, res.content
    api_raw = res.json()["id"]
    (smtp_raw,) = store_durably(
        [RawSpec(data=smtp_data, channel=RawMessage.Channel.SMTP, user_id=user.pk)]
    )
    outcomes = process_raw_messages([api_raw, smtp_raw])
    assert [o.status for o in outcomes] == ["processed", "processed"]
    assert storage.read_raw(RawMessage.objects.get(pk=smtp_raw).storage_path) == smtp_data

    email_id = next(o.email_id for o in outcomes if o.raw_id == api_raw)
    body = client.get(f"/api/v1/emails/{email_id}/").json()
    stored = [a for a in body["attachments"] if a["download_url"]]
    assert stored
    res = client.get(stored[0]["download_url"])
    assert res.status_code == 200
    content = b"".join(res.streaming_content)
    att = Attachment.objects.get(pk=stored[0]["id"])
    assert len(content) == att.size
    import hashlib

    assert hashlib.sha256(content).hexdigest() == att.sha256
    # deletion (what purge and never-log removal call) removes files and keys
    raw_paths = list(RawMessage.objects.values_list("storage_path", flat=True))
    blob_paths = [att.blob.storage_path]
    _unlink(raw_paths, blob_paths)
    assert not set(stored_files("raw")) & set(raw_paths)
    assert blob_paths[0] not in stored_files("blob")
    assert not DataKey.objects.exclude(name=storage.NAMING_KEY).exists()
