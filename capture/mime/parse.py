"""Raw RFC 5322 bytes -> ParsedEmail: the entry point and the steps of one message's build.

The tree comes from :mod:`capture.mime.tree`; the walk over its parts is iterative so that
depth and part-count limits are enforced without recursion.

Contract: :func:`parse_email` raises nothing but :class:`capture.errors.InputRejected` (with
a reason code). Damage that still leaves a usable message is recorded in
``ParsedEmail.defects`` instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from email.message import Message

from capture.errors import InputRejected, UnparseableMessage
from capture.mime.addresses import parse_address_list
from capture.mime.bodies import (
    content_charset,
    decode_body,
    decode_text,
    disposition,
    filename,
    part_payload,
)
from capture.mime.classify import classify, is_draft, report_type
from capture.mime.headers import (
    content_type,
    decode_header_value,
    decoded_headers,
    first_values,
    fix_surrogates,
    fold_whitespace,
    header_text,
    plain_params,
)
from capture.mime.ical import parse_calendar
from capture.mime.ids import (
    aware,
    normalize_message_id,
    parse_date,
    parse_references,
    synthesise_message_id,
)
from capture.mime.tree import crlf_tree, decoded_message
from capture.mime.types import (
    Address,
    AttachmentPart,
    CalendarEvent,
    ParsedEmail,
    ParseLimits,
    new_attachment,
    new_parsed_email,
)
from capture.textsafe import clean_strings

__all__ = ["parse_email"]

_CORE_HEADERS = frozenset(
    {
        "from", "to", "cc", "bcc", "date", "subject", "message-id", "received",
        "return-path", "sender", "reply-to", "mime-version", "content-type",
        "delivered-to", "in-reply-to", "references", "x-unsent",
    }
)  # fmt: skip

_ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "bcc")
_DEFAULT_LIMITS = ParseLimits()


def parse_email(
    raw: bytes, *, received_at: datetime, limits: ParseLimits = _DEFAULT_LIMITS
) -> ParsedEmail:
    """Parse raw RFC 5322 bytes; raises only InputRejected (with a reason code)."""
    try:
        return _parse_email(raw, received_at=aware(received_at), limits=limits)
    except InputRejected:
        raise
    except RecursionError as e:
        raise UnparseableMessage("too_deep", "nesting exhausted the parser") from e
    except Exception as e:  # the contract: bad input is rejected, never a crash
        raise UnparseableMessage("unparseable", f"{type(e).__name__}: {e}"[:200]) from e


def _parse_email(raw: bytes, *, received_at: datetime, limits: ParseLimits) -> ParsedEmail:
    if not isinstance(raw, bytes):
        raw = bytes(raw)
    size = len(raw)
    if size > limits.max_bytes:
        raise InputRejected("too_large", f"{size} bytes > {limits.max_bytes}")
    data = raw
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = data.lstrip(b"\r\n\t ")
    if not data or data.isspace():  # not data.strip(), without copying the message
        raise UnparseableMessage("empty")
    defects: list[str] = []
    firsts: dict[int, dict[str, str]] = {}
    msg = crlf_tree(data, defects, firsts)
    if not any(str(k).strip().lower() in _CORE_HEADERS for k, _ in msg._headers):
        raise UnparseableMessage("not_email", "no RFC 5322 header found")
    return _build(
        msg,
        size=size,
        depth=0,
        budget=_Budget(),
        received_at=received_at,
        limits=limits,
        defects=defects,
        firsts=firsts,
    )


class _Budget:
    """Part counter shared by a message and the messages forwarded inside it."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


class _Walk:
    """What the walk over one message's parts collects (a body is None until found)."""

    __slots__ = ("attachments", "calendar", "forwarded", "html_body", "text_body", "truncated")

    def __init__(self) -> None:
        self.text_body: str | None = None
        self.html_body: str | None = None
        self.truncated = False
        self.attachments: list[AttachmentPart] = []
        self.calendar: list[CalendarEvent] = []
        self.forwarded: list[ParsedEmail] = []


def _build(
    msg: Message,
    *,
    size: int,
    depth: int,
    budget: _Budget,
    received_at: datetime,
    limits: ParseLimits,
    defects: list[str],
    firsts: dict[int, dict[str, str]] | None = None,
) -> ParsedEmail:
    """One message (the top level or a forwarded one) -> ParsedEmail. `firsts`: first_values
    of msg's parts by id() where known (see tree.message_tree)."""
    if firsts is None:
        firsts = {}
    raw_headers, first = _header_fields(msg, limits)
    addresses = _address_fields(first, defects)
    message_id, in_reply_to, references = _id_fields(first, defects)
    msg_date, date_flag = parse_date(first.get("date"), received_at)
    if date_flag:
        defects.append(f"{date_flag}_date")
    subject = fold_whitespace(decode_header_value(first.get("subject", "")))

    walk = _Walk()
    _walk_parts(walk, msg, depth, budget, received_at, limits, defects, firsts)
    text_body = walk.text_body or ""
    html_body = walk.html_body or ""
    headers = decoded_headers(raw_headers)
    message_id_synthesised = not message_id
    if message_id_synthesised:
        message_id = _synthesised_id(headers, subject, text_body or html_body)
    msg_first = firsts.get(id(msg))
    if msg_first is None:
        msg_first = first_values(msg)
    report = report_type(msg, msg_first)
    # dedupe calendar events that clients send twice (alternative part + invite.ics)
    events = {(e.uid, e.recurrence_id, e.sequence, e.method, e.start): e for e in walk.calendar}

    built = new_parsed_email(
        message_id=message_id,
        message_id_synthesised=message_id_synthesised,
        in_reply_to=in_reply_to,
        references=references,
        date=msg_date,
        date_flag=date_flag,
        subject=subject,
        from_=addresses["from"],
        sender=addresses["sender"][0] if addresses["sender"] else None,
        reply_to=addresses["reply-to"],
        to=addresses["to"],
        cc=addresses["cc"],
        bcc=addresses["bcc"],
        text_body=text_body,
        html_body=html_body,
        body_truncated=walk.truncated,
        attachments=tuple(walk.attachments),
        calendar=tuple(events.values()),
        forwarded=tuple(walk.forwarded),
        auto_generated=classify(first, content_type(msg, msg_first), report, subject),
        is_draft=is_draft(first),
        headers=headers,
        defects=_dedupe(defects),
        size=size,
    )
    # every str in it storable (capture/textsafe.py); a forwarded one was cleaned when built
    return clean_strings(built)


def _header_fields(
    msg: Message, limits: ParseLimits
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The raw (name, value) headers, and {lowercased name: first value}."""
    # msg.raw_items() is msg._headers as they are
    raw_headers = [
        (k.strip() if k.__class__ is str else str(k).strip(), v if isinstance(v, str) else str(v))
        for k, v in msg._headers
    ]
    if len(raw_headers) > limits.max_headers:
        raise InputRejected("too_many_headers", f"{len(raw_headers)} headers")
    first: dict[str, str] = {}
    for name, value in raw_headers:
        first.setdefault(name.lower(), value)
    return raw_headers, first


def _address_fields(first: dict[str, str], defects: list[str]) -> dict[str, tuple[Address, ...]]:
    addresses: dict[str, tuple[Address, ...]] = {}
    for name in _ADDRESS_HEADERS:
        value = first.get(name)
        if value is None:
            addresses[name] = ()
            continue
        parsed = parse_address_list(value)
        if any(not a.valid for a in parsed):
            defects.append(f"invalid_address:{name}")
        addresses[name] = parsed
    return addresses


def _id_fields(first: dict[str, str], defects: list[str]) -> tuple[str, str, tuple[str, ...]]:
    """(Message-ID, In-Reply-To, References); the Message-ID is "" when missing or unusable."""
    raw_id = first.get("message-id")
    message_id = normalize_message_id(raw_id or "")
    if len(message_id) > 995:  # longer than its column (EmailMessage): one is synthesised
        message_id = ""
    if raw_id is None:
        defects.append("missing_message_id")
    elif not message_id:
        defects.append("invalid_message_id")
    in_reply_to_ids = parse_references(first.get("in-reply-to", ""))
    in_reply_to = in_reply_to_ids[0] if in_reply_to_ids else ""
    return message_id, in_reply_to, parse_references(first.get("references", ""))


def _walk_parts(
    walk: _Walk,
    msg: Message,
    depth: int,
    budget: _Budget,
    received_at: datetime,
    limits: ParseLimits,
    defects: list[str],
    firsts: dict[int, dict[str, str]],
) -> None:
    """Every part of msg, depth first, into `walk`; the limits hold before any part is read."""
    # stack of (part, depth, inside multipart/related); depth 0 is this message itself
    stack: list[tuple[Message, int, bool]] = [(msg, depth, False)]
    while stack:
        part, part_depth, in_related = stack.pop()
        if part_depth > limits.max_depth:
            raise InputRejected("too_deep", f"MIME nesting deeper than {limits.max_depth}")
        budget.parts += 1
        if budget.parts > limits.max_parts:
            raise InputRejected("too_many_parts", f"more than {limits.max_parts} parts")
        for defect in part.defects:
            defects.append(type(defect).__name__)
        part_first = firsts.get(id(part))
        if part_first is None:
            part_first = first_values(part)
        try:
            ctype = content_type(part, part_first)
        except Exception:
            ctype = "application/octet-stream"
        maintype = ctype.partition("/")[0]
        # is_multipart() first: get_payload() without decode=True re-decodes 8-bit text
        # (slow, and it raises on junk charset names)
        payload_obj = part.get_payload() if part.is_multipart() else None
        if isinstance(payload_obj, list):
            if maintype == "message" and ctype != "message/delivery-status":
                # message/rfc822 (and message/global): a forwarded mail, parsed on its own
                inner_depth = part_depth + 1
                cte = header_text(part, "content-transfer-encoding", part_first).strip().lower()
                for inner in payload_obj:
                    if isinstance(inner, Message):
                        walk.forwarded.append(
                            _forwarded(
                                inner, cte, inner_depth, budget, received_at, limits, defects
                            )
                        )
                continue
            related = ctype == "multipart/related"
            children = [p for p in payload_obj if isinstance(p, Message)]
            for child in reversed(children):
                stack.append((child, part_depth + 1, related))
            continue
        if ctype != "message/delivery-status":  # its human text is in text/plain
            _leaf_part(walk, part, part_first, ctype, maintype, in_related, limits, defects)


def _forwarded(
    inner: Message,
    cte: str,
    depth: int,
    budget: _Budget,
    received_at: datetime,
    limits: ParseLimits,
    defects: list[str],
) -> ParsedEmail:
    """The message in a message/* part (`cte`: the part's transfer encoding); its defects are
    its own, `defects` (the wrapper's) gets what undoing an encoding found."""
    if cte in ("base64", "quoted-printable"):
        # RFC 2046 5.2.1 allows 7bit, 8bit or binary only, but some clients encode an
        # attached .eml anyway; the stdlib then parses the encoded text as the message (no
        # headers, a base64 body).
        defects.append("encoded_message_part")
        inner = decoded_message(inner, cte, defects)
    try:
        inner_size = len(inner.as_bytes())
    except Exception:  # size is informative only
        inner_size = 0
    return _build(
        inner,
        size=inner_size,
        depth=depth,
        budget=budget,
        received_at=received_at,
        limits=limits,
        defects=[],
    )


def _leaf_part(
    walk: _Walk,
    part: Message,
    first: dict[str, str],
    ctype: str,
    maintype: str,
    in_related: bool,
    limits: ParseLimits,
    defects: list[str],
) -> None:
    """A part that is no container: the first text and HTML bodies, calendars, attachments."""
    part_disposition = disposition(part, first)
    ct_params = plain_params(part, "content-type", first)
    name = filename(part, ct_params, plain_params(part, "content-disposition", first))
    is_attachment = part_disposition == "attachment" or bool(name)
    if ctype in ("text/plain", "text/html") and not is_attachment:
        if (ctype == "text/plain" and walk.text_body is None) or (
            ctype == "text/html" and walk.html_body is None
        ):
            text = decode_body(part, ct_params, first, defects)
            if len(text) > limits.max_body_chars:
                text = text[: limits.max_body_chars]
                walk.truncated = True
            if ctype == "text/plain":
                walk.text_body = text
            else:
                walk.html_body = text
        return
    payload = part_payload(part, defects, first)
    if ctype in ("text/calendar", "application/ics"):
        text = decode_text(payload, content_charset(part, ct_params) or "utf-8", defects)
        walk.calendar.extend(parse_calendar(text, defects, limits.max_calendar_events))
        if not is_attachment:
            return
    if ctype == "text/rfc822-headers" and not is_attachment:
        return
    content_id = header_text(part, "content-id", first).strip().strip("<>").strip()
    inline = bool(content_id and in_related) or (
        part_disposition == "inline" and maintype == "image"
    )
    walk.attachments.append(
        new_attachment(
            filename=name,
            content_type=ctype,
            size=len(payload),
            sha256=hashlib.sha256(payload).hexdigest(),
            inline=inline,
            content_id=fix_surrogates(content_id),
            payload=payload,
        )
    )


def _synthesised_id(headers: tuple[tuple[str, str], ...], subject: str, body: str) -> str:
    """synthesise_message_id from the first decoded From, To, Cc and Date."""
    decoded = {n.lower(): v for n, v in reversed(headers)}
    return synthesise_message_id(
        from_=decoded.get("from", ""),
        to=decoded.get("to", ""),
        cc=decoded.get("cc", ""),
        date=decoded.get("date", ""),
        subject=subject,
        body=body,
    )


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
