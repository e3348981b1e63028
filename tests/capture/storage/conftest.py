from __future__ import annotations

import pytest

from tests.filestore import STORES, configure


@pytest.fixture(params=STORES)
def file_store(request, settings):
    """The test runs once per store: local and S3 (moto on loopback), in clear and encrypted."""
    server = request.getfixturevalue("moto_server") if request.param.startswith("s3") else None
    configure(settings, request.param, server)
    return request.param


@pytest.fixture(params=[s for s in STORES if s.endswith("-encrypted")])
def encrypted_file_store(request, settings):
    """Each encrypted store: local and S3."""
    server = request.getfixturevalue("moto_server") if request.param.startswith("s3") else None
    configure(settings, request.param, server)
    return request.param


@pytest.fixture
def encrypted_store(request, settings):
    configure(settings, "local-encrypted", None)
    return "local-encrypted"


def stored_files(kind: str) -> dict[str, bytes]:
    """Every file of the raw ("raw") or blob ("blob") store as a backup would copy it."""
    from capture import storage

    store = storage.backend(kind)
    return {name: store.read(name) for name in store.names()}
