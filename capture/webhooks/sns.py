"""Amazon SNS message signature verification (anymail 15.2 leaves it as "Future").

https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html: build the
canonical string from the message's fields, fetch the signing certificate from the
`SigningCertURL` (only from an `sns.<region>.amazonaws.com` host, over HTTPS), and verify the
RSA PKCS#1 v1.5 signature with SHA1 (SignatureVersion 1) or SHA256 (SignatureVersion 2).

`fetch_signing_cert` is the only network access; certificates are cached per URL.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from capture.errors import CaptureError

CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
FETCH_TIMEOUT_SECONDS = 10
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

_cache: dict[str, x509.Certificate] = {}
_cache_lock = threading.Lock()


class SnsSignatureInvalid(CaptureError):
    """The message is not signed by Amazon SNS (input error: answer 403)."""


class SnsCertUnavailable(CaptureError):
    """The signing certificate could not be fetched (our problem: answer 503, SNS retries)."""


def canonical_string(message: dict[str, Any]) -> bytes:
    """The bytes SNS signed: `Name\\nValue\\n` for each signed field present, in order."""
    kind = message.get("Type")
    names = NOTIFICATION_FIELDS if kind == "Notification" else SUBSCRIPTION_FIELDS
    out = []
    for name in names:
        if name in message and message[name] is not None:
            out.append(f"{name}\n{message[name]}\n")
    return "".join(out).encode("utf-8")


def check_cert_url(url: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not CERT_HOST.match(parts.hostname or ""):
        raise SnsSignatureInvalid("SigningCertURL is not an Amazon SNS https URL")
    if not parts.path.endswith(".pem"):
        raise SnsSignatureInvalid("SigningCertURL does not name a .pem certificate")


def fetch_signing_cert(url: str) -> bytes:
    """Download the PEM certificate at `url` (already checked to be an SNS host)."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.read(64 * 1024)
    except OSError as e:
        raise SnsCertUnavailable(f"cannot fetch the SNS signing certificate: {e}") from e


def signing_cert(url: str) -> x509.Certificate:
    with _cache_lock:
        cert = _cache.get(url)
    if cert is None:
        try:
            cert = x509.load_pem_x509_certificate(fetch_signing_cert(url))
        except ValueError as e:
            raise SnsSignatureInvalid("SigningCertURL did not return a certificate") from e
        with _cache_lock:
            _cache[url] = cert
    now = datetime.now(UTC)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise SnsSignatureInvalid("the SNS signing certificate is expired or not yet valid")
    return cert


def clear_cert_cache() -> None:
    with _cache_lock:
        _cache.clear()


def verify_sns_message(message: dict[str, Any]) -> None:
    """Raise SnsSignatureInvalid unless `message` carries a valid Amazon SNS signature."""
    algorithm = HASHES.get(str(message.get("SignatureVersion", "")))
    if algorithm is None:
        raise SnsSignatureInvalid("unknown SNS SignatureVersion")
    url = str(message.get("SigningCertURL") or message.get("SigningCertUrl") or "")
    check_cert_url(url)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as e:
        raise SnsSignatureInvalid("the SNS signature is not base64") from e
    key = signing_cert(url).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsSignatureInvalid("the SNS signing certificate has no RSA key")
    try:
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature as e:
        raise SnsSignatureInvalid("the SNS signature does not match") from e
