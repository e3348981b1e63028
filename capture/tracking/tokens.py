"""Signed, compact, expiring tracking tokens (no database: a pixel or click is checked by CPU).

A token is base64url (no padding) of ``payload + mac``:

- payload: kind (1 byte: 1 open, 2 click), tracked message id (8), issued and expires (4 each,
  Unix seconds); a click adds the link index (2) and the URL (UTF-8) it redirects to;
- mac: the first 16 bytes of HMAC-SHA256 over the payload, keyed from SECRET_KEY with a salt of
  its own (django.utils.crypto.salted_hmac), so no other signature of the project verifies as
  a token. SECRET_KEY_FALLBACKS verify too, so rotating the key keeps sent mail working.

An open token is 44 characters. The URL of a click is inside the signed payload: the redirect
goes only where the token says, never to a URL taken from the request (no open redirect).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import struct
from dataclasses import dataclass

from django.conf import settings
from django.utils.crypto import salted_hmac

OPEN = 1
CLICK = 2
SALT = "mailwarden.capture.tracking.v1"
MAC_BYTES = 16
_HEAD = struct.Struct(">BQII")  # kind, tracked id, issued, expires
_LINK = struct.Struct(">H")
MAX_TOKEN_CHARS = 4096  # a URL of MAX_URL_CHARS encoded, with room to spare
MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class Claims:
    kind: int
    tracked_id: int
    issued: int  # Unix seconds
    expires: int
    link: int | None = None
    url: str = ""


def _mac(payload: bytes, secret: str | bytes) -> bytes:
    return salted_hmac(SALT, payload, secret=secret, algorithm="sha256").digest()[:MAC_BYTES]


def _encode(payload: bytes) -> str:
    raw = payload + _mac(payload, settings.SECRET_KEY)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_open_token(tracked_id: int, issued: int, expires: int) -> str:
    return _encode(_HEAD.pack(OPEN, tracked_id, issued, expires))


def make_click_token(tracked_id: int, issued: int, expires: int, link: int, url: str) -> str:
    head = _HEAD.pack(CLICK, tracked_id, issued, expires)
    return _encode(head + _LINK.pack(link) + url.encode("utf-8"))


def read_token(token: str, kind: int, now: float) -> Claims | None:
    """The claims of a genuine, unexpired token of `kind`; None for anything else (tampered,
    truncated, expired, the other kind, not base64). Never raises."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < _HEAD.size + MAC_BYTES:
        return None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    if not any(hmac.compare_digest(mac, _mac(payload, s)) for s in secrets):
        return None
    got, tracked_id, issued, expires = _HEAD.unpack_from(payload)
    if got != kind or now >= expires:
        return None
    if kind == OPEN:
        return Claims(kind, tracked_id, issued, expires) if len(payload) == _HEAD.size else None
    rest = payload[_HEAD.size :]
    if len(rest) < _LINK.size:
        return None
    (link,) = _LINK.unpack_from(rest)
    try:
        url = rest[_LINK.size :].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return Claims(kind, tracked_id, issued, expires, link, url)
