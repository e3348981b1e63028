"""Keyed hashes and stable pseudonyms of personal data (addresses, names).

One key (MAILWARDEN_PSEUDONYM_KEY, by default derived from SECRET_KEY) so that the same address
always gets the same pseudonym and the same hash: anonymised mail still threads and counts by
participant, and an erased address is recognised when it comes back (capture/dsr.py) without
the address being kept anywhere. Changing the key breaks both: document it before rotating.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

PSEUDONYM_DOMAIN = "anonymised.invalid"  # RFC 2606: never a real mailbox


def _key() -> bytes:
    configured = getattr(settings, "MAILWARDEN_PSEUDONYM_KEY", "")
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"mailwarden.pseudonym", "sha256").digest()


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 (hex) of a normalised value (lower-cased, stripped)."""
    return hmac.new(_key(), value.strip().lower().encode(), hashlib.sha256).hexdigest()


def pseudonym_address(address: str) -> str:
    """A stable, obviously fake address standing in for `address`."""
    return f"anon-{keyed_hash(address)[:16]}@{PSEUDONYM_DOMAIN}"


def pseudonym_name(address: str) -> str:
    """The display name standing in for the person behind `address`."""
    return f"Anonymised {keyed_hash(address)[:6]}"


def pseudonym_of_name(name: str) -> str:
    """A stable stand-in for a display name met without its address (retention's
    anonymisation rewrites every name it finds)."""
    return f"Anonymised {keyed_hash('name:' + name)[:8]}"
