"""Message bodies (and headers) encrypted in the database: `MAILWARDEN_ENCRYPT_BODIES`.

With the setting on (it needs `MAILWARDEN_MASTER_KEYS`), `EmailMessage.text_body`,
`html_body` and `headers` are written as

    mwb1:<body key id>:<base64(salt16 | AES-256-GCM(lz4(utf-8 text)) + tag)>

by the model fields below (SealedTextField, SealedJSONField): they encrypt in
`get_db_prep_save` (every save, update and bulk insert, core/db/bulk.py included) and decrypt
in `from_db_value` (instances, `.values()`, `.only()`), so every reader — API, admin viewer,
timelines, DSR export and erasure — sees plain text without knowing.

Keys. Each value has its own data key, HMAC-SHA256(body key, salt) with a random 16-byte salt
kept in the value (so the nonce can be fixed: no key encrypts twice). The body key is one
random 256-bit key wrapped by the newest master key in the `DataKey` row `body-key`
(governance/crypto.py), so `manage.py rotate_keys` re-wraps it with the file keys — 60 bytes —
and no body is rewritten. The body key id (an HMAC fingerprint) in each value says which
body key it needs: if the `body-key` row is deleted, every encrypted body becomes unreadable
even with the master keys (shredding all bodies at once), and new writes start a new one.

Shredding one message: its data key's only other ingredient is the salt in the value itself,
so deleting the row (removal.delete_messages, the retention purge) or rewriting the body
(DSR erasure) destroys that message's key with it — there is no per-message key row to leave
behind. A database backup holds the rows and the `body-key` row alike: it stays readable by
whoever has the master keys (docs/operations.md).

Compressed with lz4 before encryption: PostgreSQL's own lz4 TOAST compression
(migration 0004) cannot compress ciphertext.

Mixed data: values without the `mwb1:` prefix are plain text written before the setting was
turned on (or while it is off) and read as they are. A plain value that itself starts with a
prefix is stored as `mwp1:` + value while the setting is off, so mail text cannot pose as
ciphertext (rows stored before this module existed are not escaped: a body that began with
`mwb1:` then would read as unreadable).

Search: the database can no longer look into encrypted bodies, so nothing may search them —
the API's `search` and the admin's search match subjects and addresses only (they never
matched bodies); the API schema and the admin search help say so.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import threading
import time

import lz4.block
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction

from governance import crypto

log = logging.getLogger("mailwarden.bodycrypt")

SEALED = "mwb1:"
ESCAPED = "mwp1:"
PREFIXES = (SEALED, ESCAPED)
BODY_KEY = "body-key"
SALT_BYTES = 16
_NONCE = bytes(12)  # each value has its own key: a fixed nonce is never reused under one key
_AAD = b"mailwarden/body-v1"
_ID_LABEL = b"mailwarden/body-key-id"
# A process re-reads the body-key row this often: after destroy_body_key() a running process
# may seal bodies under the destroyed key for this long (stop the workers first).
CACHE_SECONDS = 60.0

UNREADABLE = ""  # what a reader gets for a body whose key was destroyed


class BodyUnreadable(ValueError):
    """An encrypted body whose body key was destroyed (or whose value was tampered with)."""


def enabled() -> bool:
    """Whether new bodies are written encrypted (MAILWARDEN_ENCRYPT_BODIES)."""
    if not getattr(settings, "MAILWARDEN_ENCRYPT_BODIES", False):
        return False
    if not crypto.files_encrypted():
        raise ImproperlyConfigured("MAILWARDEN_ENCRYPT_BODIES needs MAILWARDEN_MASTER_KEYS.")
    return True


def body_search_enabled() -> bool:
    """False when bodies are encrypted in the database (nothing can search them there)."""
    return not getattr(settings, "MAILWARDEN_ENCRYPT_BODIES", False)


# --- the body key ---------------------------------------------------------------------------

_lock = threading.Lock()
# (database name, newest master key id) → (body key id, body key, loaded at)
_cache: dict[tuple[str, str], tuple[str, bytes, float]] = {}
# Wrapped forms of body keys this process inserted in a transaction not yet committed.
_uncommitted: set[bytes] = set()


def reset_caches() -> None:
    """Forget the cached body key (tests that roll the database back; capture.storage calls
    this from its own reset_caches)."""
    with _lock:
        _cache.clear()


def _key_id(key: bytes) -> str:
    return hmac.digest(key, _ID_LABEL, "sha256")[:8].hex()


def _cache_key() -> tuple[str, str]:
    return (connection.settings_dict.get("NAME") or "", crypto.keyring().newest.key_id)


def _data_key_model():
    # Through the app registry: capture.models imports this module for its fields.
    return apps.get_model("capture", "DataKey")


def _stored_body_key() -> tuple[bytes, bytes] | None:
    """(body key, its wrapped form) from the `body-key` row, None when there is none."""
    row = _data_key_model().objects.filter(name=BODY_KEY).values_list("key_id", "wrapped").first()
    if row is None:
        return None
    wrapped = bytes(row[1])
    return crypto.unwrap_data_key(row[0], wrapped, BODY_KEY), wrapped


def _current(create: bool) -> tuple[str, bytes] | None:
    ck = _cache_key()
    hit = _cache.get(ck)
    if hit is not None and time.monotonic() - hit[2] < CACHE_SECONDS:
        return hit[0], hit[1]
    found = _stored_body_key()
    if found is None and create:
        DataKey = _data_key_model()
        key_id, wrapped = crypto.wrap_data_key(crypto.new_data_key(), BODY_KEY)
        with transaction.atomic():  # two first writers: the row that got in first wins
            DataKey.objects.bulk_create(
                [DataKey(name=BODY_KEY, key_id=key_id, wrapped=wrapped)], ignore_conflicts=True
            )
        if connection.in_atomic_block:
            _uncommitted.add(wrapped)
            transaction.on_commit(lambda: _uncommitted.discard(wrapped))
        found = _stored_body_key()
    if found is None:
        with _lock:
            _cache.pop(ck, None)
        return None
    key, wrapped = found
    kid = _key_id(key)
    # Only a committed row is cached: a body key this process made in a transaction that may
    # still roll back must not go on sealing bodies under a key no row would hold. (A row
    # another transaction made is committed, or it would not be visible.)
    if wrapped not in _uncommitted:
        with _lock:
            _cache[ck] = (kid, key, time.monotonic())
    return kid, key


def destroy_body_key() -> bool:
    """Delete the body key: every body encrypted so far becomes unreadable, backups of the
    rows included once no database backup holds the key row. Returns whether there was one."""
    deleted, _ = _data_key_model().objects.filter(name=BODY_KEY).delete()
    reset_caches()
    return bool(deleted)


def current_key_id() -> str | None:
    """Id of the body key in use (None: none made yet)."""
    found = _current(create=False)
    return found[0] if found else None


# --- values ---------------------------------------------------------------------------------


def _value_key(body_key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(hmac.digest(body_key, salt, "sha256"))


def seal(text: str) -> str:
    """`text` encrypted under a fresh data key derived from the body key (created on first
    use). Empty text stays empty (an empty body reveals no more than its absence)."""
    if not text:
        return text
    current = _current(create=True)
    if current is None:
        raise OSError("the body key keeps disappearing while bodies are written")
    kid, body_key = current
    salt = os.urandom(SALT_BYTES)
    packed = lz4.block.compress(text.encode("utf-8", "surrogatepass"), store_size=True)
    sealed = _value_key(body_key, salt).encrypt(_NONCE, packed, _AAD)
    return f"{SEALED}{kid}:{base64.b64encode(salt + sealed).decode('ascii')}"


def open_sealed(value: str) -> str:
    """The plain text of a stored value; BodyUnreadable when its body key is gone."""
    if value.startswith(ESCAPED):
        return value[len(ESCAPED) :]
    if not value.startswith(SEALED):
        return value
    kid, _, b64 = value[len(SEALED) :].partition(":")
    current = _current(create=False)
    if current is None or current[0] != kid:
        raise BodyUnreadable(f"body key {kid} was destroyed")
    try:
        blob = base64.b64decode(b64)
        packed = _value_key(current[1], blob[:SALT_BYTES]).decrypt(_NONCE, blob[SALT_BYTES:], _AAD)
        return lz4.block.decompress(packed).decode("utf-8", "surrogatepass")
    except (InvalidTag, binascii.Error, ValueError, lz4.block.LZ4BlockError) as e:
        raise BodyUnreadable("an encrypted body does not decrypt under its body key") from e


def prepare(text: str) -> str:
    """What to store for `text` now: sealed with the setting on, else the text itself
    (escaped when it would look like a sealed value)."""
    if enabled():
        return seal(text)
    if text.startswith(PREFIXES):
        return ESCAPED + text
    return text


def read(value: str) -> str:
    """open_sealed for readers that must not fail: a shredded body reads as empty."""
    try:
        return open_sealed(value)
    except BodyUnreadable as e:
        log.warning("message body unreadable: %s", e)
        return UNREADABLE


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED)


# --- model fields ---------------------------------------------------------------------------


class SealedTextField(models.TextField):
    """A TextField stored encrypted while MAILWARDEN_ENCRYPT_BODIES is on (see module doc).
    Lookups on it (icontains…) see ciphertext for encrypted rows: do not search it."""

    def get_db_prep_save(self, value, connection):
        value = super().get_db_prep_save(value, connection)
        if isinstance(value, str):
            return prepare(value)
        return value

    def from_db_value(self, value, expression, connection):
        if isinstance(value, str) and value.startswith(PREFIXES):
            return read(value)
        return value


class SealedJSONField(models.JSONField):
    """A JSONField stored as one encrypted JSON string while MAILWARDEN_ENCRYPT_BODIES is on;
    plain JSON otherwise (and for rows written before)."""

    def get_db_prep_save(self, value, connection):
        if value not in (None, [], {}) and not hasattr(value, "as_sql") and enabled():
            value = seal(json.dumps(value, cls=self.encoder, separators=(",", ":")))
        return super().get_db_prep_save(value, connection)

    def from_db_value(self, value, expression, connection):
        value = super().from_db_value(value, expression, connection)
        if is_sealed(value):
            try:
                return json.loads(open_sealed(value), cls=self.decoder)
            except BodyUnreadable as e:
                log.warning("message headers unreadable: %s", e)
                return []
        return value
