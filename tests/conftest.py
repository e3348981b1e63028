"""Shared fixtures. Real services where they run; skip with a reason locally when one is
missing, but under CI=true a missing service fails the test (never a silent skip)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from tests.filestore import STORES, moto_server  # noqa: F401 (a fixture)
from tests.filestore import configure as configure_file_store
from tests.services import in_ci, require_service

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path, request):
    """Each test stores raw mail and blobs under its own temp dir (or its own prefix of the
    test S3 server with --file-store=s3, tests/filestore.py)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MAILWARDEN_RAW_STORAGE_DIR = tmp_path / "media" / "raw"
    settings.MAILWARDEN_BLOB_STORAGE_DIR = tmp_path / "media" / "blobs"
    store = request.config.getoption("file_store")
    if store != "local":
        configure_file_store(
            settings, store, request.getfixturevalue("moto_server") if "s3" in store else None
        )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Every test hashes its throwaway passwords with MD5: PBKDF2 at production cost takes
    ~0.35 s a hash here, and make_user/logins made it about a third of the suite's run time.
    The hasher is not under test; a child process (manage.py, gunicorn, the listener) keeps the
    production hashers."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Tasks run in-process unless a test starts a real worker (tests/services.py)."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_always_eager = True


@pytest.fixture
def mail_fixture():
    def load(name: str) -> bytes:
        return (FIXTURES / "mail" / name).read_bytes()

    return load


def pytest_addoption(parser):
    parser.addoption(
        "--file-store",
        choices=STORES,
        default="local",
        help="run the tests against this file store (tests/filestore.py); default local",
    )
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        help="fuzz tests run many more examples and report peak memory per message (make fuzz)",
    )
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=None,
        help="examples per fuzz test (default 25, or 2000 with --fuzz-long)",
    )


def pytest_configure(config):
    """Hypothesis profiles for the fuzz tests (tests/capture/fuzz): bounded and reproducible
    in `make test`, long and random in `make fuzz`."""
    from hypothesis import HealthCheck, settings

    relaxed = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
    relaxed.append(HealthCheck.function_scoped_fixture)  # one database rollback per example
    long = config.getoption("fuzz_long")
    examples = config.getoption("fuzz_examples") or (2000 if long else 25)
    # the long run keeps its failures in .hypothesis/ to replay them; the bounded run has
    # nothing to keep (the same examples every time)
    reproducible = {} if long else {"derandomize": True, "database": None}
    settings.register_profile(
        "mailwarden",
        max_examples=examples,
        deadline=None,
        suppress_health_check=relaxed,
        print_blob=True,
        **reproducible,
    )
    settings.load_profile("mailwarden")


def pytest_collection_modifyitems(config, items):
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    needs_pg = [item for item in items if item.get_closest_marker("postgres")]
    # .ci/run runs the suite twice: on PostgreSQL (everything), then on SQLite as `make test`
    # does on a fresh machine (MAILWARDEN_CI_SQLITE_PASS=1: the PostgreSQL-only tests, which
    # the first pass ran, skip; every other service is still required)
    if needs_pg and in_ci() and os.environ.get("MAILWARDEN_CI_SQLITE_PASS") != "1":
        raise pytest.UsageError(
            f"{len(needs_pg)} tests need PostgreSQL and CI=true: set DATABASE_URL=postgres://..."
        )
    for item in needs_pg:
        item.add_marker(
            pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
        )


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("MAILWARDEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    host, port = "127.0.0.1", 6379
    try:
        hostport = url.split("//", 1)[1].split("/", 1)[0]
        host, _, p = hostport.rpartition(":")
        port = int(p)
    except (IndexError, ValueError):
        pass
    try:
        socket.create_connection((host or "127.0.0.1", port), timeout=1).close()
    except OSError:
        require_service(False, f"Redis at {url}")
    return url


@pytest.fixture
def which():
    def find(name: str) -> str:
        path = shutil.which(name)
        require_service(path is not None, f"the '{name}' program (apt-get install it)")
        return path  # type: ignore[return-value]

    return find
