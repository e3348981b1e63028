"""Keys at rest: one keyring for mailbox secrets and for the data keys of stored files.

Master keys come from settings, newest first:

* `MAILWARDEN_MASTER_KEYS`: the keys of envelope encryption (docs/operations.md). When set,
  raw mail and attachment files are encrypted (capture/storage.py) and new secrets are
  encrypted under its first key.
* `MAILWARDEN_ENCRYPTION_KEY`: the older setting for mailbox secrets. Its keys stay in the
  keyring (after the master keys) so secrets written under it remain readable until
  `manage.py rotate_keys` moves them to the newest master key; without master keys its first
  key encrypts new secrets.

Each entry is a comma-free string: a key from `generate_key()` (32 url-safe base64 bytes) or
any passphrase. Either is stretched with HKDF-SHA256 (RFC 5869) into a 256-bit AES key, and
named by a key id: the first 8 bytes of an HMAC of a fixed label under the key (hex), which
says which key a wrapped item needs and reveals nothing of the key.

What the keys protect:

* secrets (mailbox passwords, OAuth tokens): AES-256-GCM under the master key directly,
  token `mw1:<key id>:<base64 nonce+ciphertext>`. Fernet tokens of earlier versions
  (`gAAAA…`) still decrypt with the same entries and are re-encrypted by rotation.
* data keys of files: one random 256-bit key per file, wrapped (AES-GCM) under the newest
  master key with the file's name as associated data, so a wrapped key cannot be moved to
  another file. Rotation re-wraps the 60-byte wrapped keys; the files are not touched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Fixed, public derivation context: changing either would make every stored secret unreadable.
_HKDF_SALT = b"mailwarden/secrets-at-rest"
_HKDF_INFO = b"fernet-key-v1"
_MASTER_INFO = b"mailwarden/master-key-v1"
_KEY_ID_LABEL = b"mailwarden/key-id"
TOKEN_PREFIX = "mw1:"  # noqa: S105 (a format marker, not a secret)
NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class SecretDecryptError(Exception):
    """A stored secret cannot be decrypted: wrong or rotated-out key, or a corrupted token."""


class KeyUnavailable(Exception):
    """A wrapped data key cannot be unwrapped: its master key is not configured (or the
    wrapped key was tampered with)."""


def _entry_bytes(item: str) -> bytes:
    raw = item.encode()
    try:
        if len(raw) == 44 and len(decoded := base64.urlsafe_b64decode(raw)) == 32:
            return decoded
    except (binascii.Error, ValueError):
        pass
    return raw


def _as_fernet_key(item: str) -> bytes:
    """A Fernet key as given, or one derived from a passphrase with HKDF-SHA256 (the
    derivation of earlier versions, kept so their tokens still decrypt)."""
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


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    aead: AESGCM
    secret: bytes  # the derived 256-bit key (for HMAC naming keys)


@dataclass(frozen=True)
class Keyring:
    keys: tuple[MasterKey, ...]  # newest first
    by_id: dict[str, MasterKey]
    fernet: MultiFernet | None  # earlier versions' secret tokens
    files_encrypted: bool  # MAILWARDEN_MASTER_KEYS set

    @property
    def newest(self) -> MasterKey:
        return self.keys[0]


def _master(item: str) -> MasterKey:
    secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MASTER_INFO).derive(
        _entry_bytes(item)
    )
    key_id = hmac.new(secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]
    return MasterKey(key_id=key_id, aead=AESGCM(secret), secret=secret)


def _items(value: object) -> list[str]:
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    return [k.strip() for k in str(value or "").split(",") if k.strip()]


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else str(value or "")


@lru_cache(maxsize=16)
def _keyring_for(master_setting: object, legacy_setting: object) -> Keyring:
    masters = _items(master_setting)
    legacy = _items(legacy_setting)
    items = list(dict.fromkeys([*masters, *legacy]))
    if not items:
        raise ImproperlyConfigured(
            "Neither MAILWARDEN_MASTER_KEYS nor MAILWARDEN_ENCRYPTION_KEY is set."
        )
    keys = tuple(_master(k) for k in items)
    return Keyring(
        keys=keys,
        by_id={k.key_id: k for k in keys},
        fernet=MultiFernet([Fernet(_as_fernet_key(k)) for k in items]),
        files_encrypted=bool(masters),
    )


def keyring() -> Keyring:
    """The configured keys (parsed once per distinct setting value)."""
    return _keyring_for(
        _hashable(getattr(settings, "MAILWARDEN_MASTER_KEYS", "")),
        _hashable(settings.MAILWARDEN_ENCRYPTION_KEY),
    )


def files_encrypted() -> bool:
    """Whether new files are written encrypted (MAILWARDEN_MASTER_KEYS is set)."""
    return keyring().files_encrypted


# --- secrets ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def encrypt_secret(plain: str) -> str:
    """Encrypt with the newest key; returns an ASCII token safe for a text column."""
    key = keyring().newest
    nonce = os.urandom(NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, plain.encode("utf-8"), key.key_id.encode())
    return f"{TOKEN_PREFIX}{key.key_id}:{_b64(nonce + sealed)}"


def secret_key_id(token: str) -> str | None:
    """The key id a token was encrypted under (None: a Fernet token of earlier versions)."""
    if token.startswith(TOKEN_PREFIX):
        return token[len(TOKEN_PREFIX) :].split(":", 1)[0]
    return None


def decrypt_secret(token: str) -> str:
    """Decrypt with any configured key; raises SecretDecryptError when none fits."""
    ring = keyring()
    try:
        if token.startswith(TOKEN_PREFIX):
            key_id, _, body = token[len(TOKEN_PREFIX) :].partition(":")
            key = ring.by_id.get(key_id)
            if key is None:
                raise SecretDecryptError(f"master key {key_id} is not configured")
            blob = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = key.aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], key_id.encode())
        else:
            assert ring.fernet is not None
            plain = ring.fernet.decrypt(token.encode("ascii"))
        return plain.decode("utf-8")
    except (InvalidToken, InvalidTag, UnicodeError, binascii.Error, ValueError) as e:
        raise SecretDecryptError("secret cannot be decrypted with the configured keys") from e


def secret_is_current(token: str) -> bool:
    return secret_key_id(token) == keyring().newest.key_id


def rotate_secret(token: str) -> str:
    """Re-encrypt a token under the newest key (after prepending a new key to the setting)."""
    if secret_is_current(token):
        return token
    return encrypt_secret(decrypt_secret(token))


def generate_key() -> str:
    """A fresh key for MAILWARDEN_MASTER_KEYS / MAILWARDEN_ENCRYPTION_KEY (44 characters)."""
    return Fernet.generate_key().decode("ascii")


# --- data keys ----------------------------------------------------------------------------


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_data_key(data_key: bytes, name: str, key: MasterKey | None = None) -> tuple[str, bytes]:
    """(key id, nonce + wrapped key) of `data_key` under the newest master key; `name` (the
    file's name) is bound as associated data."""
    key = key or keyring().newest
    nonce = os.urandom(NONCE_BYTES)
    return key.key_id, nonce + key.aead.encrypt(nonce, data_key, name.encode())


def unwrap_data_key(key_id: str, wrapped: bytes, name: str, ring: Keyring | None = None) -> bytes:
    key = (ring or keyring()).by_id.get(key_id)
    if key is None:
        raise KeyUnavailable(f"master key {key_id} is not configured")
    wrapped = bytes(wrapped)
    try:
        return key.aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], name.encode())
    except InvalidTag as e:
        raise KeyUnavailable(f"data key of {name} does not unwrap under {key_id}") from e
