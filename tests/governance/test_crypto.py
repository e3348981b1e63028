from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from governance.crypto import (
    SecretDecryptError,
    decrypt_secret,
    encrypt_secret,
    generate_key,
    rotate_secret,
)


def test_a_secret_round_trips_and_is_not_stored_in_clear(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    token = encrypt_secret("hunter2-päss")
    assert "hunter2" not in token
    assert decrypt_secret(token) == "hunter2-päss"


def test_a_passphrase_is_turned_into_a_key(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = "correct horse battery staple"
    token = encrypt_secret("s3cret")
    assert decrypt_secret(token) == "s3cret"
    # The derived key is a real Fernet key: the token is a Fernet token.
    assert token.startswith("gAAAA")


def test_a_wrong_key_raises_secret_decrypt_error(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    token = encrypt_secret("s3cret")
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


def test_a_corrupted_token_raises_secret_decrypt_error(settings):
    settings.MAILWARDEN_ENCRYPTION_KEY = generate_key()
    with pytest.raises(SecretDecryptError):
        decrypt_secret("not-a-token")


def test_old_secrets_stay_readable_after_a_new_key_is_prepended(settings):
    old, new = generate_key(), generate_key()
    settings.MAILWARDEN_ENCRYPTION_KEY = old
    token = encrypt_secret("s3cret")
    settings.MAILWARDEN_ENCRYPTION_KEY = f"{new},{old}"
    assert decrypt_secret(token) == "s3cret"
    rotated = rotate_secret(token)
    # After rotation the old key can be dropped.
    settings.MAILWARDEN_ENCRYPTION_KEY = new
    assert decrypt_secret(rotated) == "s3cret"
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


def test_new_secrets_are_encrypted_with_the_first_key(settings):
    old, new = generate_key(), generate_key()
    settings.MAILWARDEN_ENCRYPTION_KEY = f"{new},{old}"
    token = encrypt_secret("s3cret")
    assert Fernet(new.encode()).decrypt(token.encode()) == b"s3cret"
