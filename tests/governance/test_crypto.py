from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, MultiFernet

from governance import crypto
from governance.crypto import (
    SecretDecryptError,
    decrypt_secret,
    encrypt_secret,
    generate_key,
    rotate_secret,
)


@pytest.fixture(autouse=True)
def _no_master_keys(settings):
    settings.MAILWARDEN_MASTER_KEYS = []


def test_a_secret_round_trips_and_is_not_stored_in_clear(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    token = encrypt_secret("hunter2-päss")
    assert "hunter2" not in token
    assert token.startswith("mw1:")
    assert decrypt_secret(token) == "hunter2-päss"


def test_a_passphrase_is_turned_into_a_key(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = "correct horse battery staple"
    token = encrypt_secret("s3cret")
    assert decrypt_secret(token) == "s3cret"
    settings.MAILWARDEN_ENCRYPTION_KEY = "correct horse battery stapl"
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


def test_a_wrong_key_raises_secret_decrypt_error(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    token = encrypt_secret("s3cret")
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


@pytest.mark.parametrize("token", ["not-a-token", "mw1:", "mw1:abc:%%%", "gAAAAbad"])
def test_a_corrupted_token_raises_secret_decrypt_error(settings, token):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


def test_a_tampered_token_raises_secret_decrypt_error(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    token = encrypt_secret("s3cret")
    # a character in the middle: every one of its 6 bits is data (near the end of base64
    # some bits are padding, and flipping those changes nothing)
    mid = len(token) // 2
    flipped = token[:mid] + ("A" if token[mid] != "A" else "B") + token[mid + 1 :]
    with pytest.raises(SecretDecryptError):
        decrypt_secret(flipped)


def test_old_secrets_stay_readable_after_a_new_key_is_prepended(settings):
    old, new = generate_key(), generate_key()
    settings.MAILWARDEN_ENCRYPTION_KEY = old
    token = encrypt_secret("s3cret")
    settings.MAILWARDEN_ENCRYPTION_KEY = f"{new},{old}"
    assert decrypt_secret(token) == "s3cret"
    rotated = rotate_secret(token)
    assert rotated != token
    # After rotation the old key can be dropped.
    settings.MAILWARDEN_ENCRYPTION_KEY = new
    assert decrypt_secret(rotated) == "s3cret"
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


def test_fernet_tokens_of_earlier_versions_still_decrypt_and_rotate(settings):
    key = "correct horse battery staple"
    settings.MAILWARDEN_ENCRYPTION_KEY = key
    legacy = MultiFernet([Fernet(crypto._as_fernet_key(key))]).encrypt(b"old-secret").decode()
    assert decrypt_secret(legacy) == "old-secret"
    master = generate_key()
    settings.MAILWARDEN_MASTER_KEYS = [master]
    rotated = rotate_secret(legacy)
    assert crypto.secret_key_id(rotated) == crypto.keyring().newest.key_id
    settings.MAILWARDEN_ENCRYPTION_KEY = "something else entirely"
    assert decrypt_secret(rotated) == "old-secret"


def test_new_secrets_are_encrypted_with_the_first_master_key(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    old, new = generate_key(), generate_key()
    settings.MAILWARDEN_MASTER_KEYS = [new, old]
    token = encrypt_secret("s3cret")
    settings.MAILWARDEN_MASTER_KEYS = [new]
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    assert decrypt_secret(token) == "s3cret"
    settings.MAILWARDEN_MASTER_KEYS = [old]
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


def test_key_ids_are_stable_and_distinct_and_do_not_reveal_the_key(settings):
    a, b = generate_key(), generate_key()
    settings.MAILWARDEN_MASTER_KEYS = [a, b]
    ring = crypto.keyring()  # the two master keys, then MAILWARDEN_ENCRYPTION_KEY's
    assert len({k.key_id for k in ring.keys}) == 3
    assert ring.keys[0].key_id == crypto._master(a).key_id
    assert ring.keys[0].key_id not in a


def test_a_wrapped_data_key_is_bound_to_its_file_name(settings):
    settings.MAILWARDEN_MASTER_KEYS = [generate_key()]
    dk = crypto.new_data_key()
    key_id, wrapped = crypto.wrap_data_key(dk, "raw/ab/one.eml.enc")
    assert crypto.unwrap_data_key(key_id, wrapped, "raw/ab/one.eml.enc") == dk
    with pytest.raises(crypto.KeyUnavailable):
        crypto.unwrap_data_key(key_id, wrapped, "raw/ab/other.eml.enc")
    settings.MAILWARDEN_MASTER_KEYS = [generate_key()]
    with pytest.raises(crypto.KeyUnavailable):
        crypto.unwrap_data_key(key_id, wrapped, "raw/ab/one.eml.enc")
