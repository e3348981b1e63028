"""Secrets and signatures, Standard Webhooks style (https://www.standardwebhooks.com/).

A secret is `whsec_` + base64 of 32 random bytes. Each attempt is signed anew:
`webhook-signature: v1,<base64 HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>`,
one such entry per valid secret, space-separated (the previous secret's too, for a while after
a rotation). The signing itself is the `standardwebhooks` package's, the reference
implementation; a receiver may verify with it or with the snippet in docs/webhooks.md.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secrets_in_use: list[str], message_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header for this attempt: one `v1,<sig>` per secret."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(s).sign(message_id, when, body) for s in secrets_in_use)


def signed_headers(secrets_in_use: list[str], message_id: str, timestamp: int, body: str) -> dict:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets_in_use, message_id, timestamp, body),
        "content-type": "application/json",
    }
