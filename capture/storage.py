"""Content-addressed file storage for raw messages and attachment blobs, optionally encrypted.

A file is named by the sha256 of its bytes, written to a temp name, fsynced (or flushed with
its batch by one syncfs) and renamed; writing the same bytes again costs one read, which
checks that the file there holds them (see LocalStore.save).

Two backends behind one interface (`MAILWARDEN_FILE_STORE`): `local` (a directory, with the
group-commit durability above) and `s3` (an S3-compatible bucket through django-storages;
a PUT is durable once answered, so there is nothing to flush).

Envelope encryption (`MAILWARDEN_MASTER_KEYS` set, docs/operations.md): each file gets its
own random AES-256-GCM data key, wrapped by the newest master key and kept in a `DataKey`
row named after the file (governance/crypto.py). The file is `MAGIC | nonce | ciphertext+tag`
and named `<hmac>.eml.enc` / `<hmac>.bin.enc`: the name is an HMAC of the content's sha256
under a random naming key (itself a wrapped DataKey row), so the same bytes still map to one
file while a copy of the store cannot be probed with guessed content. The `.enc` suffix says
a file is encrypted, so plain files written before encryption was turned on still read.
Deleting a file deletes its DataKey row first (crypto-shredding: copies of the file in
backups can no longer be decrypted).
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import io
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.db.bulk import execute_binary
from governance import crypto

T = TypeVar("T")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _relative_path(digest: str, suffix: str) -> str:
    """`ab/abcdef….eml`: 256 directories, as git's object store. Two levels (65,536
    directories) meant a mkdir for nearly every file of a fresh store, a third of a first IMAP
    sync's time here (bench/imap_sync.py); ext4's hashed directories keep lookups fast with
    tens of thousands of files each. Rows store their path, so files written under the older
    `ab/cd/…` layout are still found."""
    return f"{digest[:2]}/{digest}{suffix}"


def _libc_syncfs():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _libc_syncfs()


def sync_filesystem(path: os.PathLike | str) -> None:
    """Flush every dirty file and directory entry of the file system holding `path`
    (syncfs(2)): one call makes a whole batch of new files durable, renames included."""
    if _syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (the file's own fsync does not cover its directory entry)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- encryption -----------------------------------------------------------------------------

MAGIC = b"MWE\x01"  # Mailwarden envelope, format 1
NONCE_BYTES = crypto.NONCE_BYTES
OVERHEAD = len(MAGIC) + NONCE_BYTES + 16  # header + GCM tag
ENC_SUFFIX = ".enc"
RAW, BLOB = "raw", "blob"
NAMING_KEY = "naming-key"


class DataKeyDestroyed(FileNotFoundError):
    """An encrypted file whose data key is gone (crypto-shredded): its content is lost, as
    if the file were missing."""


def seal(data_key: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(data_key).encrypt(nonce, data, MAGIC)


def unseal(data_key: bytes, payload: bytes, name: str = "") -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if payload[: len(MAGIC)] != MAGIC:
        raise ValueError(f"{name}: not an encrypted Mailwarden file")
    nonce = payload[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(data_key).decrypt(nonce, payload[len(MAGIC) + NONCE_BYTES :], MAGIC)
    except InvalidTag as e:
        raise ValueError(f"{name}: encrypted file does not decrypt with its data key") from e


def encryption_on() -> bool:
    return crypto.files_encrypted()


_naming: dict[tuple[str, str], bytes] = {}


def reset_caches() -> None:
    """Forget the cached naming key and body key (tests that roll the database back call
    this)."""
    from capture import bodycrypt

    _naming.clear()
    bodycrypt.reset_caches()


def _key_rows(names: Sequence[str]) -> dict[str, tuple[str, bytes]]:
    from capture.models import DataKey

    return {
        n: (k, bytes(w))
        for n, k, w in DataKey.objects.filter(name__in=list(names)).values_list(
            "name", "key_id", "wrapped"
        )
    }


def _create_keys(names: Sequence[str], _tries: int = 3) -> dict[str, bytes]:
    """name → data key for every name, a new key wrapped and inserted where none exists; two
    writers of the same name end up with the same key (the row that got in first)."""
    from capture.models import DataKey

    names = list(dict.fromkeys(names))
    fresh = {n: crypto.new_data_key() for n in names}
    wrapped = {n: crypto.wrap_data_key(k, n) for n, k in fresh.items()}
    table = DataKey._meta.db_table
    if connection.vendor == "postgresql":
        # one statement for the batch, arrays bound server-side in binary (core/db/bulk.py)
        rows = execute_binary(
            f"INSERT INTO {table} (name, key_id, wrapped, created) "  # noqa: S608
            "SELECT n, k, w, %b FROM unnest(%b::text[], %b::text[], %b::bytea[]) AS t(n, k, w) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            [
                timezone.now(),
                names,
                [wrapped[n][0] for n in names],
                [wrapped[n][1] for n in names],
            ],
            fetch=True,
        )
        inserted = {row[0] for row in rows}
    else:
        existing = set(DataKey.objects.filter(name__in=names).values_list("name", flat=True))
        DataKey.objects.bulk_create(
            [
                DataKey(name=n, key_id=wrapped[n][0], wrapped=wrapped[n][1])
                for n in names
                if n not in existing
            ],
            ignore_conflicts=True,
        )
        rows = _key_rows(names)
        inserted = {n for n in names if n in rows and rows[n][1] == wrapped[n][1]}
    keys = {n: fresh[n] for n in inserted}
    others = [n for n in names if n not in inserted]
    if others:
        for n, (key_id, w) in _key_rows(others).items():
            keys[n] = crypto.unwrap_data_key(key_id, w, n)
        gone = [n for n in others if n not in keys]  # deleted (shredded) since the insert
        if gone and _tries > 0:
            keys.update(_create_keys(gone, _tries - 1))
        elif gone:
            raise OSError(f"data keys of {len(gone)} file(s) keep disappearing while written")
    return keys


def naming_key() -> bytes:
    """The random key whose HMAC names encrypted files (stable across master-key rotation:
    it is stored wrapped like any data key)."""
    cache_key = (connection.settings_dict.get("NAME") or "", crypto.keyring().newest.key_id)
    key = _naming.get(cache_key)
    if key is None:
        with transaction.atomic():
            key = _create_keys([NAMING_KEY])[NAMING_KEY]
        _naming[cache_key] = key
    return key


def data_keys(kind: str, rels: Sequence[str]) -> dict[str, bytes]:
    """rel → unwrapped data key of existing encrypted files (missing: destroyed)."""
    names = {f"{kind}/{rel}": rel for rel in rels if rel.endswith(ENC_SUFFIX)}
    if not names:
        return {}
    return {
        names[n]: crypto.unwrap_data_key(key_id, w, n)
        for n, (key_id, w) in _key_rows(list(names)).items()
    }


_prefetched = threading.local()


@contextmanager
def prefetched_keys(kind: str, rels: Sequence[str]):
    """Within the block, reads of these files take their data keys from one query made now
    (a batch of processing reads one raw file a message)."""
    keys = data_keys(kind, rels)  # no query when none is encrypted
    previous = getattr(_prefetched, "keys", None)
    _prefetched.keys = {(kind, rel): key for rel, key in keys.items()}
    try:
        yield
    finally:
        _prefetched.keys = previous


def _plain(kind: str, rel: str, payload: bytes, key: bytes | None = None) -> bytes:
    if not rel.endswith(ENC_SUFFIX):
        return payload
    if key is None:
        cached = getattr(_prefetched, "keys", None)
        key = cached.get((kind, rel)) if cached else None
    if key is None:
        key = data_keys(kind, [rel]).get(rel)
        if key is None:
            raise DataKeyDestroyed(f"the data key of {kind}/{rel} was destroyed")
    return unseal(key, payload, f"{kind}/{rel}")


# --- backends -------------------------------------------------------------------------------


class LocalStore:
    """Files under a directory; durability by fsync per file or one syncfs per batch."""

    kind_s3 = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, rel: str, data: bytes, fsync: bool, key: bytes | None = None) -> None:
        """Write `data` (sealed with `key` when given) under `rel` unless the file there
        already holds it."""
        target = self.root / rel
        try:
            size = len(data) + (OVERHEAD if key is not None else 0)
            if os.stat(target).st_size == size and _holds(target, data, key):
                return  # content-addressed: the same bytes are already there
        except FileNotFoundError:
            pass
        payload = seal(key, data) if key is not None else data
        _write_atomic(target, payload, fsync)

    def read(self, rel: str) -> bytes:
        # os-level open/read: Path.read_bytes' path objects and io layers showed in the
        # workers' profile (one read per processed message).
        with open(os.path.join(self.root, rel), "rb", buffering=0) as f:
            return f.read()

    def open(self, rel: str):
        return (self.root / rel).open("rb")

    def delete(self, rel: str) -> None:
        try:
            (self.root / rel).unlink()
        except FileNotFoundError:
            pass

    def flush(self, rels: Sequence[str], fsync: bool) -> None:
        """Make files just written durable: their directories fsynced when each file was
        fsynced (a file's fsync does not cover its new name), else one syncfs."""
        if fsync:
            for directory in {(self.root / rel).parent for rel in rels}:
                fsync_dir(directory)
        elif rels:
            sync_filesystem(self.root)

    def names(self):
        """Every stored file's relative name (tests, audits)."""
        if not self.root.exists():
            return
        for p in self.root.rglob("*"):
            if p.is_file() and not p.name.startswith(".tmp-"):
                yield p.relative_to(self.root).as_posix()


_tmp_counter = itertools.count()


def _write_atomic(target: Path, payload: bytes, fsync: bool) -> None:
    # A name no other writer uses (pid, thread, counter) instead of mkstemp's random retry
    # loop, and the directories made only when missing: both showed up per file in the
    # IMAP and SMTP profiles (bench/imap_sync.py, bench/smtp_accept.py).
    tmp = target.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_tmp_counter)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(payload)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _holds(path: Path, data: bytes, key: bytes | None = None) -> bool:
    """Whether the file at `path` holds exactly `data` (sealed with `key`). A file of the
    right size is read back rather than trusted: files of a batch are renamed into place
    before its one syncfs, so a crash in between can leave a name whose blocks never reached
    the disk (zeros, or nothing on some file systems), and the next store of the same bytes
    (an SMTP retry, a re-sync) must not commit a row pointing at it. Costs a read only when
    the bytes repeat."""
    try:
        with open(path, "rb", buffering=0) as f:
            payload = f.read()
        if key is None:
            return payload == data
        return unseal(key, payload) == data
    except (OSError, ValueError):
        return False


class S3Store:
    """Objects in an S3-compatible bucket (django-storages' S3Storage; endpoint URL for
    non-AWS servers). `<prefix>/raw/…` and `<prefix>/blobs/…`. A PUT is durable when it
    returns and replaces an object atomically, so every save is a plain PUT and there is
    nothing to flush or to check."""

    kind_s3 = True

    def __init__(self, location: str) -> None:
        from storages.backends.s3 import S3Storage

        self.storage = S3Storage(
            bucket_name=settings.MAILWARDEN_S3_BUCKET,
            location=location,
            endpoint_url=settings.MAILWARDEN_S3_ENDPOINT_URL or None,
            region_name=settings.MAILWARDEN_S3_REGION or None,
            access_key=settings.MAILWARDEN_S3_ACCESS_KEY or None,
            secret_key=settings.MAILWARDEN_S3_SECRET_KEY or None,
            file_overwrite=True,
            default_acl=None,
            querystring_auth=False,
            max_memory_size=8 * 1024 * 1024,
        )

    def _object(self, rel: str):
        return self.storage.bucket.Object(self.storage._normalize_name(rel))

    def save(self, rel: str, data: bytes, fsync: bool, key: bytes | None = None) -> None:
        from django.core.files.base import ContentFile

        payload = seal(key, data) if key is not None else data
        self.storage.save(rel, ContentFile(payload))

    def read(self, rel: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self._object(rel).get()["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(rel) from e
            raise OSError(f"object store: {e}") from e

    def open(self, rel: str):
        return io.BytesIO(self.read(rel))

    def delete(self, rel: str) -> None:
        self.storage.delete(rel)

    def flush(self, rels: Sequence[str], fsync: bool) -> None:
        return None

    def names(self):
        prefix = self.storage._normalize_name("")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        for obj in self.storage.bucket.objects.filter(Prefix=prefix):
            yield obj.key[len(prefix) :]


_s3_stores: dict[tuple, S3Store] = {}


def backend(kind: str) -> LocalStore | S3Store:
    """The store of `kind` ("raw" or "blob") as configured now."""
    if settings.MAILWARDEN_FILE_STORE == "s3":
        folder = "raw" if kind == RAW else "blobs"
        location = "/".join(p for p in (settings.MAILWARDEN_S3_PREFIX.strip("/"), folder) if p)
        cfg = (
            location,
            settings.MAILWARDEN_S3_BUCKET,
            settings.MAILWARDEN_S3_ENDPOINT_URL,
            settings.MAILWARDEN_S3_REGION,
            settings.MAILWARDEN_S3_ACCESS_KEY,
        )
        store = _s3_stores.get(cfg)
        if store is None:
            store = _s3_stores[cfg] = S3Store(location)
        return store
    return LocalStore(raw_root() if kind == RAW else blob_root())


def raw_root() -> Path:
    return Path(settings.MAILWARDEN_RAW_STORAGE_DIR)


def blob_root() -> Path:
    return Path(settings.MAILWARDEN_BLOB_STORAGE_DIR)


# --- the interface ----------------------------------------------------------------------------


def _names_for(
    kind: str, datas: Sequence[bytes], digests: Sequence[str | None]
) -> tuple[list[str], list[str], list[bytes | None]]:
    """(sha256s, relative names, data keys or None) of the files to write."""
    shas = [d or sha256_hex(x) for x, d in zip(datas, digests, strict=True)]
    suffix = ".eml" if kind == RAW else ".bin"
    if not encryption_on():
        return shas, [_relative_path(s, suffix) for s in shas], [None] * len(shas)
    nk = naming_key()
    rels = [
        _relative_path(hmac.new(nk, s.encode(), hashlib.sha256).hexdigest(), suffix + ENC_SUFFIX)
        for s in shas
    ]
    keys = _create_keys([f"{kind}/{r}" for r in rels])
    return shas, rels, [keys[f"{kind}/{r}"] for r in rels]


def save_raw(
    data: bytes, *, digest: str | None = None, fsync: bool = True, root: Path | None = None
) -> tuple[str, str]:
    """Store raw message bytes; returns (sha256, relative path). `root`: a local directory
    other than raw_root() (a batch reads the setting once)."""
    shas, rels, keys = _names_for(RAW, [data], [digest])
    store = LocalStore(root) if root is not None else backend(RAW)
    store.save(rels[0], data, fsync, keys[0])
    return shas[0], rels[0]


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def write_in_parallel(fn: Callable[[T], object], items: Sequence[T]) -> list:
    """`[fn(x) for x in items]`, the files written by a few threads at once.

    Creating a file here mostly waits in the kernel (inode and journal), and those waits
    overlap: 4,000 files of 4 KB took 0.33 ms each on one thread and 0.06 ms on four
    (ext4, this machine). File I/O and AES-GCM release the GIL. The pool belongs to the
    process that made it (a forked Celery worker makes its own).
    """
    threads = settings.MAILWARDEN_STORE_WRITE_THREADS
    if threads <= 1 or len(items) < 4:
        return [fn(x) for x in items]
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (
                os.getpid(),
                ThreadPoolExecutor(threads, thread_name_prefix="mailwarden-store"),
            )
        pool = _pool[1]
    return list(pool.map(fn, items))


def _save_many(kind: str, items: Sequence[bytes], fsync: bool) -> list[tuple[str, str]]:
    if not items:
        return []
    shas, rels, keys = _names_for(kind, items, [None] * len(items))
    store = backend(kind)
    write_in_parallel(
        lambda i: store.save(rels[i], items[i], fsync, keys[i]), list(range(len(items)))
    )
    return list(zip(shas, rels, strict=True))


def save_raws(items: Sequence[bytes], *, fsync: bool = False) -> list[tuple[str, str]]:
    """Store several raw messages, unsynced unless `fsync` (the caller flushes the batch:
    flush_raws)."""
    return _save_many(RAW, items, fsync)


def flush_raws(rels: Sequence[str], *, fsync: bool = False) -> None:
    """Make raw files written by save_raws durable (see LocalStore.flush)."""
    backend(RAW).flush(rels, fsync)


def save_raws_durably(items: list[bytes]) -> list[tuple[str, str]]:
    """Store several raw messages and make them durable before returning: one file is
    fsynced with its directory; a batch is written unsynced and flushed with one syncfs."""
    fsync = len(items) == 1
    paths = save_raws(items, fsync=fsync)
    flush_raws([rel for _, rel in paths], fsync=fsync)
    return paths


def read_raw(rel: str) -> bytes:
    """The raw message's bytes; FileNotFoundError when the file is gone, DataKeyDestroyed
    (a FileNotFoundError) when its data key is."""
    return _plain(RAW, rel, backend(RAW).read(rel))


def save_blob(data: bytes, *, digest: str | None = None, fsync: bool = True) -> tuple[str, str]:
    shas, rels, keys = _names_for(BLOB, [data], [digest])
    backend(BLOB).save(rels[0], data, fsync, keys[0])
    return shas[0], rels[0]


def save_blobs(
    items: Sequence[tuple[bytes, str | None]], *, fsync: bool = False
) -> list[tuple[str, str]]:
    """Store several blobs at once ((data, sha256 or None) each): one key query per batch."""
    if not items:
        return []
    datas = [d for d, _ in items]
    shas, rels, keys = _names_for(BLOB, datas, [s for _, s in items])
    store = backend(BLOB)
    write_in_parallel(
        lambda i: store.save(rels[i], datas[i], fsync, keys[i]), list(range(len(datas)))
    )
    return list(zip(shas, rels, strict=True))


def flush_blobs(rels: Sequence[str], *, fsync: bool = False) -> None:
    """Make blob files written unsynced durable (see LocalStore.flush)."""
    backend(BLOB).flush(rels, fsync)


def read_blob(rel: str) -> bytes:
    return _plain(BLOB, rel, backend(BLOB).read(rel))


def open_blob(rel: str):
    """A binary file object of the blob's (decrypted) content."""
    if rel.endswith(ENC_SUFFIX):
        return io.BytesIO(read_blob(rel))
    return backend(BLOB).open(rel)


def _delete(kind: str, rel: str) -> None:
    forget_keys(kind, [rel])  # the key first
    backend(kind).delete(rel)


def forget_keys(kind: str, rels: Iterable[str]) -> None:
    """Destroy the data keys of these files in one statement (crypto-shredding first: once
    a key is gone every copy of its file, backups included, is noise)."""
    from capture.models import DataKey

    names = [f"{kind}/{rel}" for rel in rels if rel.endswith(ENC_SUFFIX)]
    for i in range(0, len(names), 1000):
        DataKey.objects.filter(name__in=names[i : i + 1000]).delete()


def delete_raw_file(rel: str) -> None:
    """Remove a raw file whose key `forget_keys` already destroyed."""
    backend(RAW).delete(rel)


def delete_blob_file(rel: str) -> None:
    """Remove a blob file whose key `forget_keys` already destroyed."""
    backend(BLOB).delete(rel)


def delete_raw(rel: str) -> None:
    """Delete a raw file and destroy its data key (crypto-shredding)."""
    _delete(RAW, rel)


def delete_blob(rel: str) -> None:
    """Delete a blob file and destroy its data key (crypto-shredding)."""
    _delete(BLOB, rel)
