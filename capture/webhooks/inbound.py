"""Capture one inbound message an ESP posted to us (anymail parsed and verified it).

The recipient decides the capture address, as with SMTP: each envelope recipient that is an
active `log+<token>@<capture domain>` address gets one RawMessage for its owner, provided the
sender is the owner's own address (HubSpot's rule; the pipeline's gate checks it again).
An unknown recipient stores nothing. The provider's raw MIME is stored byte for byte when the
provider sends it (Mailgun `body-mime`, SendGrid "send raw" `email`, Postmark `RawEmail`,
Amazon SES `content`); otherwise the message anymail rebuilt from the parsed fields.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any
from urllib.parse import unquote_to_bytes

from django.db import transaction

from capture.intake import RawSpec, store_raw_message
from capture.models import CaptureAddress, RawMessage
from governance.audit import Actor, record_event

log = logging.getLogger(__name__)

RAW_FIELDS = {"mailgun": "body-mime", "sendgrid": "email"}


@dataclass(frozen=True)
class RecipientOutcome:
    """What happened for one envelope recipient: stored, duplicate, refused or unknown."""

    outcome: str
    capture_address_id: int | None = None
    raw_id: int | None = None
    reason: str = ""


# --- reading what the provider sent ------------------------------------------------------


def form_field_bytes(request: Any, name: str) -> bytes | None:
    """The exact bytes of one form field of a multipart or urlencoded POST (no re-decoding)."""
    try:
        body: bytes = request.body
    except Exception:  # the stream was consumed without being cached: fall back
        return None
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/form-data"):
        envelope = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        form = BytesParser(policy=compat32).parsebytes(envelope + body)
        for part in form.get_payload() if form.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == name:
                payload = part.get_payload(decode=True)
                return payload if isinstance(payload, bytes) else None
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        wanted = name.encode()
        for pair in body.split(b"&"):
            key, _, value = pair.partition(b"=")
            if unquote_to_bytes(key.replace(b"+", b" ")) == wanted:
                return unquote_to_bytes(value.replace(b"+", b" "))
    return None


def raw_mime_bytes(event: Any, provider: str) -> bytes:
    """The message as the provider received it, when it sent the raw MIME; else as rebuilt."""
    esp_event = event.esp_event
    raw: bytes | None = None
    if provider in RAW_FIELDS and hasattr(esp_event, "META"):
        raw = form_field_bytes(esp_event, RAW_FIELDS[provider])
    elif provider == "postmark" and isinstance(esp_event, dict) and esp_event.get("RawEmail"):
        raw = str(esp_event["RawEmail"]).encode("utf-8", "surrogateescape")
    elif provider == "amazon_ses" and isinstance(esp_event, dict) and esp_event.get("content"):
        action = esp_event.get("receipt", {}).get("action", {})
        content = str(esp_event["content"])
        if action.get("encoding") == "BASE64":
            try:
                raw = base64.b64decode(content)
            except (binascii.Error, ValueError):
                raw = None
        else:
            raw = content.encode("utf-8", "surrogateescape")
    return raw if raw else event.message.as_bytes()


def envelope_recipients(event: Any, provider: str) -> list[str]:
    """Every envelope recipient the provider names (anymail keeps only the first)."""
    esp_event, message = event.esp_event, event.message
    found: list[str] = []
    if provider == "amazon_ses" and isinstance(esp_event, dict):
        found = list(esp_event.get("receipt", {}).get("recipients") or [])
    elif provider == "sendgrid" and hasattr(esp_event, "POST"):
        try:
            found = list(json.loads(esp_event.POST.get("envelope", "{}")).get("to") or [])
        except (TypeError, ValueError, AttributeError):
            found = []
    if not found and message.envelope_recipient:
        found = [a for _, a in getaddresses([str(message.envelope_recipient)]) if a]
    if not found:
        # No envelope from the provider: the headers are all we have (Delivered-To first).
        headers = []
        for name in ("Delivered-To", "X-Original-To", "To", "Cc", "Bcc"):
            headers += [str(v) for v in message.get_all(name) or []]
        found = [a for _, a in getaddresses(headers) if a]
    seen: set[str] = set()
    unique = []
    for address in found:
        key = address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            unique.append(address.strip())
    return unique


def sender_addresses(message: Any) -> list[str]:
    """The envelope sender and the From addresses: all must be the owner's own."""
    out = [str(message.envelope_sender)] if message.envelope_sender else []
    out += [a for _, a in getaddresses([str(v) for v in message.get_all("From") or []]) if a]
    return out


# --- capturing ---------------------------------------------------------------------------


def sender_allowed_for(address: CaptureAddress, senders: list[str]) -> bool:
    from capture.addresses import sender_allowed, team_sender_allowed

    if address.kind == CaptureAddress.Kind.SHARED:
        return team_sender_allowed(senders)
    return sender_allowed(address.user, senders)


def capture_inbound_event(event: Any, *, provider: str) -> list[RecipientOutcome]:
    """Store the message once per capture address it was sent to; returns one outcome each.

    Raises StoreUnavailable when the store is down (the view answers 503 and the ESP retries;
    recipients already stored are recognised by their idempotency key on the retry).
    """
    from capture.addresses import parse_capture_token, resolve_capture_address

    message = event.message
    actor = Actor.of(f"webhook:{provider}")
    recipients = envelope_recipients(event, provider)
    senders = sender_addresses(message)
    data: bytes | None = None
    outcomes: list[RecipientOutcome] = []
    done: set[int] = set()
    for rcpt in recipients:
        if parse_capture_token(rcpt) is None:
            continue  # not one of ours (a colleague in To/Cc)
        address = resolve_capture_address(rcpt)
        if address is None:
            outcomes.append(RecipientOutcome("unknown", reason="unknown_capture_address"))
            continue
        if address.pk in done:
            continue
        done.add(address.pk)
        if not sender_allowed_for(address, senders):
            record_event(
                "capture.refused",
                actor=actor,
                obj=address,
                channel="webhook",
                detail={"provider": provider, "reason": "sender_not_allowed"},
            )
            outcomes.append(RecipientOutcome("refused", address.pk, reason="sender_not_allowed"))
            continue
        if data is None:
            data = raw_mime_bytes(event, provider)
        outcomes.append(_store(data, event, provider, address, rcpt, actor))
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    log.info("inbound webhook %s: %s", provider, counts or "no capture recipient")
    return outcomes


def _store(
    data: bytes, event: Any, provider: str, address: CaptureAddress, rcpt: str, actor: Actor
) -> RecipientOutcome:
    ref = event.event_id or hashlib.sha256(data).hexdigest()
    key = f"webhook:{provider}:{ref}:{address.pk}"[:200]
    existing = RawMessage.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return RecipientOutcome("duplicate", address.pk, existing.pk)
    spec = RawSpec(
        data=data,
        channel=RawMessage.Channel.WEBHOOK,
        user_id=address.user_id,
        capture_address_id=address.pk,
        envelope_from=str(event.message.envelope_sender or ""),
        envelope_to=[rcpt],
        source=f"webhook:{provider}",
        idempotency_key=key,
    )
    with transaction.atomic():
        raw = store_raw_message(spec)
        record_event(
            "capture.received",
            actor=actor,
            obj=raw,
            channel="webhook",
            detail={"provider": provider, "size": raw.size, "sha256": raw.sha256},
        )
    return RecipientOutcome("stored", address.pk, raw.pk)
