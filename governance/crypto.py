"""Secrets at rest: mailbox passwords and OAuth tokens now, message bodies later.

`settings.MAILWARDEN_ENCRYPTION_KEY` is a comma-separated list of keys, newest first
(MultiFernet: encrypt with the first, decrypt with any, so keys rotate without downtime).
Each key is either a Fernet key (32 url-safe base64 bytes) or any passphrase, which is
stretched into one with HKDF-SHA256 (RFC 5869). A passphrase must not contain a comma.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Fixed, public derivation context: changing either would make every stored secret unreadable.
_HKDF_SALT = b"mailwarden/secrets-at-rest"
_HKDF_INFO = b"fernet-key-v1"


class SecretDecryptError(Exception):
    """A stored secret cannot be decrypted: wrong or rotated-out key, or a corrupted token."""


def _as_fernet_key(item: str) -> bytes:
    """A Fernet key as given, or one derived from a passphrase with HKDF-SHA256."""
    raw = item.encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32 and len(raw) == 44:
            return raw
    except (binascii.Error, ValueError):
        pass
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        raw
    )
    return base64.urlsafe_b64encode(derived)


@lru_cache(maxsize=8)
def _fernet_for(key_setting: str) -> MultiFernet:
    items = [k.strip() for k in key_setting.split(",") if k.strip()]
    if not items:
        raise ImproperlyConfigured("MAILWARDEN_ENCRYPTION_KEY is empty.")
    return MultiFernet([Fernet(_as_fernet_key(k)) for k in items])


def _fernet() -> MultiFernet:
    return _fernet_for(str(settings.MAILWARDEN_ENCRYPTION_KEY))


def encrypt_secret(plain: str) -> str:
    """Encrypt with the newest key; returns an ASCII token safe for a text column."""
    return _fernet().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt_secret(token: str) -> str:
    """Decrypt with any configured key; raises SecretDecryptError when none fits."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as e:
        raise SecretDecryptError("secret cannot be decrypted with the configured keys") from e


def rotate_secret(token: str) -> str:
    """Re-encrypt a token under the newest key (after prepending a new key to the setting)."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as e:
        raise SecretDecryptError("secret cannot be decrypted with the configured keys") from e


def generate_key() -> str:
    """A fresh Fernet key for MAILWARDEN_ENCRYPTION_KEY."""
    return Fernet.generate_key().decode("ascii")
