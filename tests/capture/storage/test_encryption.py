"""Envelope encryption of the file store: nothing readable without the keys, rotation
without rewriting files, crypto-shredding on delete (capture/storage.py, docs/operations.md)."""

from __future__ import annotations

import email
import hashlib
import io
from email import policy

import pytest
from django.core.management import call_command

from capture import storage
from capture.intake import RawSpec, store_raw_message
from capture.models import Blob, DataKey, MailboxConnection, RawMessage
from capture.pipeline import process_raw_messages
from governance import crypto
from governance.models import AuditEvent
from tests.capture.storage.conftest import stored_files
from tests.factories import make_user
from tests.filestore import TEST_MASTER_KEYS

pytestmark = pytest.mark.django_db

FIXTURES = ["nested_multipart.eml", "multipart_alternative.eml", "calendar_invite.eml"]
WINDOW = 16


def _attachments(data: bytes) -> list[bytes]:
    msg = email.message_from_bytes(data, policy=policy.default)
    return [
        p.get_content() if isinstance(p.get_content(), bytes) else p.get_content().encode()
        for p in msg.iter_attachments()
    ]


def _windows(data: bytes) -> set[bytes]:
    return {data[i : i + WINDOW] for i in range(0, max(1, len(data) - WINDOW + 1))}


def _capture_all(mail_fixture) -> list[bytes]:
    user = make_user()
    plain = []
    raws = []
    for name in FIXTURES:
        data = mail_fixture(name)
        plain.append(data)
        plain.extend(a for a in _attachments(data) if len(a) >= WINDOW)
        raws.append(
            store_raw_message(RawSpec(data=data, channel="import", user_id=user.pk), enqueue=False)
        )
    outcomes = process_raw_messages([r.pk for r in raws])
    assert {o.status for o in outcomes} == {"processed"}
    assert Blob.objects.exists()
    return plain


def test_a_copy_of_the_store_without_the_key_reveals_no_plaintext_run(file_store, mail_fixture):
    plain = _capture_all(mail_fixture)
    windows = set().union(*(_windows(p) for p in plain))
    shas = {hashlib.sha256(p).hexdigest() for p in plain}
    files = {**stored_files("raw"), **{f"blob:{k}": v for k, v in stored_files("blob").items()}}
    assert len(files) >= len(FIXTURES) + 1
    leaked = [
        name
        for name, body in files.items()
        if any(body[i : i + WINDOW] in windows for i in range(0, len(body) - WINDOW + 1))
    ]
    named_by_content = [n for n in files if any(s in n for s in shas)]
    if file_store.endswith("-encrypted"):
        assert leaked == []
        assert named_by_content == []  # names are keyed hashes, not the content's sha256
        assert all(b.startswith(storage.MAGIC) for b in files.values())
    else:  # the check itself finds plaintext where there is some
        assert len(leaked) == len(files)
        assert named_by_content


def test_the_same_bytes_are_stored_once(file_store, mail_fixture):
    data = mail_fixture("multipart_alternative.eml")
    first = store_raw_message(RawSpec(data=data, channel="import"), enqueue=False)
    second = store_raw_message(RawSpec(data=data, channel="api"), enqueue=False)
    assert first.storage_path == second.storage_path
    assert list(stored_files("raw")) == [first.storage_path]
    assert storage.read_raw(second.storage_path) == data
    assert DataKey.objects.filter(name__startswith="raw/").count() == (
        1 if file_store.endswith("-encrypted") else 0
    )


def test_files_written_before_encryption_was_turned_on_still_read(settings, mail_fixture):
    data = mail_fixture("draft.eml")
    _, plain_rel = storage.save_raw(data)
    _, blob_rel = storage.save_blob(b"attachment bytes " * 10)
    settings.MAILWARDEN_MASTER_KEYS = TEST_MASTER_KEYS
    storage.reset_caches()
    assert storage.read_raw(plain_rel) == data
    assert storage.open_blob(blob_rel).read() == b"attachment bytes " * 10
    _, enc_rel = storage.save_raw(data)
    assert enc_rel != plain_rel and enc_rel.endswith(".eml.enc")
    assert storage.read_raw(enc_rel) == data


def test_a_damaged_file_of_the_right_size_is_rewritten(encrypted_store):
    data = b"Subject: the real bytes\r\n\r\nbody\r\n"
    digest, rel = storage.save_raw(data)
    path = storage.raw_root() / rel
    path.write_bytes(b"\0" * path.stat().st_size)
    assert storage.save_raw(data) == (digest, rel)
    assert storage.read_raw(rel) == data


def _mailbox(secret: str) -> MailboxConnection:
    from capture.imap.credentials import set_secret

    box = MailboxConnection(owner=make_user(), host="imap.example.com", username="u@example.com")
    set_secret(box, secret)
    box.save()
    return box


def test_rotation_rewraps_mixed_key_data_without_rewriting_files(settings, encrypted_store):
    old, new = crypto.generate_key(), crypto.generate_key()
    settings.MAILWARDEN_MASTER_KEYS = [old]
    storage.reset_caches()
    a_data, b_data = b"message under the old key\r\n" * 20, b"blob under the new key" * 30
    _, a_rel = storage.save_raw(a_data)
    box = _mailbox("imap-pass-1")
    settings.MAILWARDEN_MASTER_KEYS = [new, old]
    _, b_rel = storage.save_blob(b_data)
    assert set(DataKey.objects.values_list("key_id", flat=True)) == {
        crypto._master(old).key_id,
        crypto._master(new).key_id,
    }
    before = stored_files("raw") | stored_files("blob")
    out = io.StringIO()
    call_command("rotate_keys", "--no-progress", stdout=out)
    assert "re-wrapped 2 data key(s)" in out.getvalue()  # a's key and the naming key
    assert "re-encrypted 1 mailbox secret(s)" in out.getvalue()
    assert stored_files("raw") | stored_files("blob") == before  # files untouched
    assert set(DataKey.objects.values_list("key_id", flat=True)) == {crypto._master(new).key_id}
    assert AuditEvent.objects.filter(action="keys.rotated").exists()
    settings.MAILWARDEN_MASTER_KEYS = [new]  # the old key is gone now
    settings.MAILWARDEN_ENCRYPTION_KEY = crypto.generate_key()
    storage.reset_caches()
    assert storage.read_raw(a_rel) == a_data
    assert storage.open_blob(b_rel).read() == b_data
    from capture.imap.credentials import get_secret

    box.refresh_from_db()
    assert get_secret(box) == "imap-pass-1"
    # the same bytes again still map to the same file (the naming key survived rotation)
    assert storage.save_raw(a_data)[1] == a_rel


def test_rotation_is_resumable(settings, encrypted_store):
    old, new = crypto.generate_key(), crypto.generate_key()
    settings.MAILWARDEN_MASTER_KEYS = [old]
    storage.reset_caches()
    items = [f"message {i}\r\n".encode() * 10 for i in range(5)]
    rels = [rel for _, rel in storage.save_raws(items)]
    settings.MAILWARDEN_MASTER_KEYS = [new, old]
    from capture.keyrotation import pending, rotate_data_keys

    calls = []

    def interrupt(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate_data_keys(chunk=2, progress=interrupt)
    assert pending()[0] == 2  # two chunks of two committed, the naming key and one file left
    assert rotate_data_keys(chunk=2) == (2, 0)
    assert pending() == (0, 0)
    settings.MAILWARDEN_MASTER_KEYS = [new]
    assert [storage.read_raw(r) for r in rels] == items


def test_rotation_leaves_keys_of_unconfigured_master_keys_and_reports_them(
    settings, encrypted_store
):
    lost = crypto.generate_key()
    settings.MAILWARDEN_MASTER_KEYS = [lost]
    storage.reset_caches()
    storage.save_raw(b"under a key about to be lost")
    settings.MAILWARDEN_MASTER_KEYS = [crypto.generate_key()]
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_keys", "--no-progress", stdout=out, stderr=err)
    assert "2 item(s) need a master key" in err.getvalue()


@pytest.mark.parametrize("kind", ["raw", "blob"])
def test_a_file_whose_data_key_was_destroyed_cannot_be_read_even_with_the_master_key(
    encrypted_file_store, kind
):
    data = b"Subject: secret plans\r\n\r\nthe plans\r\n" * 30
    save, delete = (
        (storage.save_raw, storage.delete_raw)
        if kind == "raw"
        else (storage.save_blob, storage.delete_blob)
    )
    _, rel = save(data)
    backup = storage.backend(kind).read(rel)  # a copy in last night's backup
    delete(rel)
    assert not DataKey.objects.filter(name=f"{kind}/{rel}").exists()
    with pytest.raises(FileNotFoundError):
        storage.backend(kind).read(rel)
    storage.backend(kind).save(rel, backup, fsync=False)  # restored from the backup
    read = storage.read_raw if kind == "raw" else (lambda r: storage.open_blob(r).read())
    with pytest.raises(storage.DataKeyDestroyed):
        read(rel)
    # and no key configured or derivable opens it: try every master key on the payload
    for key in crypto.keyring().keys:
        with pytest.raises(ValueError):
            storage.unseal(key.secret, backup)


def test_deleting_a_raw_message_through_the_operations_destroys_its_key(
    encrypted_store, mail_fixture
):
    raw = store_raw_message(
        RawSpec(data=mail_fixture("draft.eml"), channel="import"), enqueue=False
    )
    assert DataKey.objects.filter(name=f"raw/{raw.storage_path}").exists()
    storage.delete_raw(raw.storage_path)
    assert not DataKey.objects.filter(name=f"raw/{raw.storage_path}").exists()
    assert RawMessage.objects.filter(pk=raw.pk).exists()


def test_rotate_keys_prints_log_lines_when_not_on_a_terminal(settings, encrypted_store):
    old = crypto.generate_key()
    settings.MAILWARDEN_MASTER_KEYS = [old]
    storage.reset_caches()
    storage.save_raws([b"one" * 10, b"two" * 10, b"three" * 10])
    settings.MAILWARDEN_MASTER_KEYS = [crypto.generate_key(), old]
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)  # stderr is no terminal under pytest
    assert "4 data key(s) and 0 secret(s) to rotate" in out.getvalue()
    assert "rotate_keys: 4 of 4 done" in out.getvalue()
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)
    assert "0 data key(s) and 0 secret(s) to rotate" in out.getvalue()


def test_a_batch_of_processing_reads_its_data_keys_in_one_query(encrypted_store, mail_fixture):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    names = ["multipart_alternative.eml", "draft.eml", "calendar_invite.eml", "dsn.eml"]
    raws = [
        store_raw_message(RawSpec(data=mail_fixture(n), channel="import"), enqueue=False)
        for n in names
    ]
    with CaptureQueriesContext(connection) as queries:
        outcomes = process_raw_messages([r.pk for r in raws])
    assert len(outcomes) == len(raws)
    assert {o.status for o in outcomes} <= {"processed", "rejected"}
    key_reads = [q for q in queries if "capture_datakey" in q["sql"] and "SELECT" in q["sql"]]
    assert len(key_reads) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_writers_racing_on_the_same_bytes_share_one_data_key(encrypted_store):
    import threading

    from django.db import connection

    data = b"Subject: raced\r\n\r\nthe same bytes from two listeners\r\n" * 20
    storage.naming_key()  # both writers name the file alike
    barrier = threading.Barrier(4)
    results, errors = [], []

    def write() -> None:
        try:
            barrier.wait()
            results.append(storage.save_raw(data, fsync=False))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert DataKey.objects.filter(name__startswith="raw/").count() == 1
    assert storage.read_raw(results[0][1]) == data
