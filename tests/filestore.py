"""The file store a test runs against: local (default) or an S3-compatible server (moto's
standalone server, a real process on loopback), in clear or encrypted.

`pytest --file-store=s3-encrypted tests/capture/test_api_captures.py ...` runs any test on
another store; tests/capture/storage/ parametrizes its own over all four.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from tests.services import require_service

STORES = ["local", "local-encrypted", "s3", "s3-encrypted"]
BUCKET = "mailwarden-test"
# Fixed test keys (never used anywhere else): newest first.
TEST_MASTER_KEYS = [
    "1V6Fm2w0QyKXbJqk6gk6g0Zl6w3QmY2r1oZ0hN3cD4A=",
    "an older passphrase, still configured",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> str:
        if self.proc is not None:
            return self.url
        try:
            import moto.server  # noqa: F401
        except ImportError:
            require_service(False, "moto[server] (pip install -e '.[dev]')")
        port = _free_port()
        env = {**os.environ, "MOTO_PORT": str(port)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    require_service(False, "moto's S3 server on loopback")
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port}"
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        return self.url

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


def configure(settings, store: str, server: MotoServer | None) -> None:
    """Point settings at `store` (one of STORES); S3 tests get their own prefix."""
    from capture import storage

    storage.reset_caches()
    settings.MAILWARDEN_MASTER_KEYS = TEST_MASTER_KEYS if store.endswith("-encrypted") else []
    if store.startswith("s3"):
        assert server is not None
        settings.MAILWARDEN_FILE_STORE = "s3"
        settings.MAILWARDEN_S3_BUCKET = BUCKET
        settings.MAILWARDEN_S3_PREFIX = f"t-{uuid.uuid4().hex[:12]}"
        settings.MAILWARDEN_S3_ENDPOINT_URL = server.start()
        settings.MAILWARDEN_S3_REGION = "us-east-1"
        settings.MAILWARDEN_S3_ACCESS_KEY = "test"
        settings.MAILWARDEN_S3_SECRET_KEY = "test"
    else:
        settings.MAILWARDEN_FILE_STORE = "local"


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer()
    yield server
    server.stop()


def store_env() -> dict[str, str]:
    """The file-store settings of this test as environment variables, for a child process
    (a purge worker, a command) that must use the same store."""
    from django.conf import settings

    names = [
        "MAILWARDEN_FILE_STORE", "MAILWARDEN_S3_BUCKET", "MAILWARDEN_S3_PREFIX",
        "MAILWARDEN_S3_ENDPOINT_URL", "MAILWARDEN_S3_REGION", "MAILWARDEN_S3_ACCESS_KEY",
        "MAILWARDEN_S3_SECRET_KEY",
    ]  # fmt: skip
    env = {n: str(getattr(settings, n, "") or "") for n in names}
    env["MAILWARDEN_MASTER_KEYS"] = ",".join(settings.MAILWARDEN_MASTER_KEYS or [])
    env["MAILWARDEN_RAW_STORAGE_DIR"] = str(settings.MAILWARDEN_RAW_STORAGE_DIR)
    env["MAILWARDEN_BLOB_STORAGE_DIR"] = str(settings.MAILWARDEN_BLOB_STORAGE_DIR)
    return env


def stored_objects() -> dict[str, bytes]:
    """Every file of the raw and blob stores as it lies in the store (encrypted bytes when
    encryption is on), keyed 'raw:<rel>' / 'blob:<rel>': local folders or the S3 bucket."""
    from capture import storage

    found = {}
    for kind, label in (("raw", "raw"), ("blob", "blob")):
        store = storage.backend(kind)
        for rel in store.names():
            if hasattr(store, "root"):
                data = (store.root / rel).read_bytes()
            else:
                data = store._object(rel).get()["Body"].read()
            found[f"{label}:{rel}"] = data
    return found
