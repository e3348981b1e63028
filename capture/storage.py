"""Content-addressed file storage for raw messages and attachment blobs.

A file is named by the sha256 of its bytes, written to a temp name, fsynced and renamed,
so a crash leaves either the whole file or nothing; writing the same bytes twice is free.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _relative_path(digest: str, suffix: str) -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"


def _write_atomic(root: Path, rel: str, data: bytes, fsync: bool) -> None:
    target = root / rel
    if target.exists() and target.stat().st_size == len(data):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def raw_root() -> Path:
    return Path(settings.MAILWARDEN_RAW_STORAGE_DIR)


def blob_root() -> Path:
    return Path(settings.MAILWARDEN_BLOB_STORAGE_DIR)


def save_raw(data: bytes, *, digest: str | None = None, fsync: bool = True) -> tuple[str, str]:
    """Store raw message bytes; returns (sha256, relative path)."""
    digest = digest or sha256_hex(data)
    rel = _relative_path(digest, ".eml")
    _write_atomic(raw_root(), rel, data, fsync)
    return digest, rel


def read_raw(rel: str) -> bytes:
    return (raw_root() / rel).read_bytes()


def save_blob(data: bytes, *, digest: str | None = None, fsync: bool = True) -> tuple[str, str]:
    digest = digest or sha256_hex(data)
    rel = _relative_path(digest, ".bin")
    _write_atomic(blob_root(), rel, data, fsync)
    return digest, rel


def open_blob(rel: str):
    return (blob_root() / rel).open("rb")


def delete_raw(rel: str) -> None:
    try:
        (raw_root() / rel).unlink()
    except FileNotFoundError:
        pass
