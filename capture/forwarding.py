"""Recover the original of a mail a user forwarded to their capture address (pure Python).

A forward arrives either with the original attached (message/rfc822, which keeps every
header) or quoted inline under a client-specific marker ("---------- Forwarded message
---------", "-----Original Message-----", "Begin forwarded message:", ...). Inline forwards
lose the Message-ID and References, so the original gets a Message-ID synthesised from
the recovered header values and body, and its date is parsed leniently from whatever the
client printed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from capture.mime import (
    Address,
    ParsedEmail,
    decode_header_value,
    parse_address_list,
    synthesise_message_id,
)
from capture.textsafe import clean_strings

__all__ = ["ForwardedOriginal", "extract_forwarded_original", "html_to_text", "parse_loose_date"]

# A wrapper text up to this long (after stripping) is "just a note" next to an attached
# original; a longer text with an inline marker means the user forwarded inline.
SHORT_NOTE_CHARS = 500


@dataclass(frozen=True)
class ForwardedOriginal:
    parsed: ParsedEmail | None  # the original, when recoverable
    method: str  # "attached" | "inline" | "none"
    recovered_headers: bool  # False -> the wrapper should be logged and flagged


# --------------------------------------------------------------------------- html -> text

_DROP_BLOCKS = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_BREAKS = re.compile(r"<br\b[^>]*>|</(?:p|div|tr|li|h[1-6]|blockquote|table)\s*>|<hr\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")


def html_to_text(markup: str) -> str:
    """A plain-text rendering of HTML good enough to find forward markers and headers."""
    text = _COMMENTS.sub("", markup)
    text = _DROP_BLOCKS.sub("", text)
    text = _BREAKS.sub("\n", text)
    text = _TAGS.sub("", text)
    text = html.unescape(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --------------------------------------------------------------------------- markers, headers

_MARKER = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|forwarded message|original message|"
    r"weitergeleitete nachricht|urspr[üu]ngliche nachricht|message transf[ée]r[ée]|"
    r"message d'origine|mensaje reenviado|mensaje original|messaggio inoltrato|"
    r"doorgestuurd bericht|oorspronkelijk bericht)\s*-{2,}"
    r"|begin forwarded message:|anfang der weitergeleiteten nachricht:|"
    r"d[ée]but du message r[ée]exp[ée]di[ée]\s*:)\s*$",
    re.IGNORECASE,
)
_OUTLOOK_RULE = re.compile(r"^_{10,}\s*$")
_HEADER_LINE = re.compile(r"^\*?(?P<key>[^\W\d_][\w-]*(?: [A-Za-z]+)?)\*?\s*:\s*(?P<value>.*)$")
_QUOTE_PREFIX = re.compile(r"^(?:>[ \t]?)+")
_MAILTO_BRACKETS = re.compile(r"\[mailto:([^\]]+)\]", re.I)

_KEYS = {
    "from": "from", "von": "from", "de": "from", "van": "from", "da": "from",
    "date": "date", "sent": "date", "datum": "date", "gesendet": "date", "envoyé": "date",
    "verzonden": "date", "inviato": "date", "enviado": "date", "fecha": "date",
    "to": "to", "an": "to", "à": "to", "a": "to", "aan": "to", "para": "to",
    "cc": "cc", "kopie": "cc",
    "bcc": "bcc",
    "subject": "subject", "betreff": "subject", "objet": "subject", "onderwerp": "subject",
    "oggetto": "subject", "asunto": "subject",
    "reply-to": "reply-to", "antwort an": "reply-to",
}  # fmt: skip
_CANONICAL_NAMES = {
    "from": "From", "date": "Date", "to": "To", "cc": "Cc", "bcc": "Bcc",
    "subject": "Subject", "reply-to": "Reply-To",
}  # fmt: skip


def _unquote(line: str) -> str:
    return _QUOTE_PREFIX.sub("", line.lstrip(" "))


def _header_key(line: str) -> tuple[str, str] | None:
    match = _HEADER_LINE.match(_unquote(line).strip())
    if not match:
        return None
    key = _KEYS.get(match.group("key").lower())
    return (key, match.group("value").strip()) if key else None


@dataclass
class _Inline:
    headers: dict[str, str]
    body: str


def _read_block(lines: list[str], start: int) -> _Inline | None:
    j = start
    while j < len(lines) and j < start + 4 and not _unquote(lines[j]).strip():
        j += 1
    quoted = j < len(lines) and lines[j].lstrip(" ").startswith(">")
    headers: dict[str, str] = {}
    last = ""
    while j < len(lines):
        line = _unquote(lines[j])
        if not line.strip():
            break
        found = _header_key(line)
        if found:
            last = found[0]
            headers.setdefault(last, found[1])
        elif last in ("to", "cc", "bcc") and (line[:1] in " \t" or "@" in line or ";" in line):
            headers[last] = f"{headers[last]} {line.strip()}"  # wrapped recipient list
        elif last == "subject" and line[:1] in " \t":
            headers[last] = f"{headers[last]} {line.strip()}"
        else:
            break
        j += 1
    if "from" not in headers:
        return None
    body_lines = lines[j:]
    if quoted:
        body_lines = [re.sub(r"^ ?>[ \t]?", "", line, count=1) for line in body_lines]
    return _Inline(headers=headers, body="\n".join(body_lines).strip("\n"))


def _find_inline(text: str) -> tuple[_Inline, int] | None:
    """The first forwarded header block in the text, and the offset of its marker line."""
    lines = text.replace("\r\n", "\n").split("\n")
    offset = 0
    for i, line in enumerate(lines):
        bare = _unquote(line).strip()
        found: _Inline | None = None
        if _MARKER.match(bare) or _OUTLOOK_RULE.match(bare):
            found = _read_block(lines, i + 1)
        elif (
            (key := _header_key(bare)) is not None
            and key[0] == "from"
            and i + 1 < len(lines)
            and (nxt := _header_key(lines[i + 1])) is not None
            and nxt[0] in ("date", "to")
            and i > 0
        ):
            # Outlook without a separator line: "From: ...\nSent: ...\nTo: ..." mid-text
            found = _read_block(lines, i)
        if found is not None:
            return found, offset
        offset += len(line) + 1
    return None


# --------------------------------------------------------------------------- dates

_WEEKDAY_PREFIX = re.compile(r"^[^\W\d_]+\.?,\s*")
_AT = re.compile(r"\s+(?:at|um|à|om|alle)\s+", re.I)
_TZ_SUFFIX = re.compile(
    r"\s*(?:\(?(?:GMT|UTC|Z)\)?\s*(?P<sign>[+-])(?P<h>\d{1,2})(?::?(?P<m>\d{2}))?"
    r"|(?P<zulu>GMT|UTC|Z)"
    r"|(?P<sign2>[+-])(?P<h2>\d{2}):?(?P<m2>\d{2}))\s*$",
    re.I,
)
_MONTHS_LOCAL = {
    "januar": "January", "jänner": "January", "februar": "February", "märz": "March",
    "maerz": "March", "mai": "May", "juni": "June", "juli": "July", "oktober": "October",
    "dezember": "December", "janvier": "January", "février": "February", "mars": "March",
    "avril": "April", "juin": "June", "juillet": "July", "août": "August",
    "septembre": "September", "octobre": "October", "novembre": "November",
    "décembre": "December",
}  # fmt: skip
_LOOSE_FORMATS = (
    "%B %d, %Y %I:%M %p", "%B %d, %Y %I:%M:%S %p", "%b %d, %Y %I:%M %p",
    "%b %d, %Y %I:%M:%S %p", "%B %d, %Y %H:%M", "%b %d, %Y %H:%M",
    "%d %B %Y %H:%M:%S", "%d %B %Y %H:%M", "%d %b %Y %H:%M:%S", "%d %b %Y %H:%M",
    "%d %B %Y %I:%M:%S %p", "%d %B %Y %I:%M %p", "%d %b %Y %I:%M %p",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
    "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%d/%m/%Y %H:%M",
)  # fmt: skip


def parse_loose_date(value: str) -> datetime | None:
    """Parse a date as mail clients print it in forwards; None if it cannot be read.

    RFC 5322 dates first, then the common client formats ("Monday, March 3, 2025 10:15 AM",
    "Mon, Mar 3, 2025 at 10:15 AM", "21 March 2025 at 17:30:12 GMT", "Donnerstag,
    20. März 2025 16:02"). A time without a zone is taken as UTC.
    """
    from email.utils import parsedate_to_datetime

    text = value.strip()
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is not None:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    text = _WEEKDAY_PREFIX.sub("", text)
    text = _AT.sub(" ", text)
    text = re.sub(r"\b(\d{1,2})\.\s+(?=[^\W\d_])", r"\1 ", text)  # "20. März" -> "20 März"
    text = " ".join(_MONTHS_LOCAL.get(word.lower(), word) for word in text.split())
    tz = UTC
    match = _TZ_SUFFIX.search(text)
    if match:
        sign = match.group("sign") or match.group("sign2")
        if sign:
            hours = int(match.group("h") or match.group("h2"))
            minutes = int(match.group("m") or match.group("m2") or 0)
            delta = timedelta(hours=hours, minutes=minutes)
            if delta < timedelta(hours=15):
                tz = timezone(-delta if sign == "-" else delta)
        text = text[: match.start()].strip()
    text = text.replace("\u202f", " ")  # macOS puts a narrow no-break space before AM/PM
    for fmt in _LOOSE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    return None


# --------------------------------------------------------------------------- building


def _address_value(value: str) -> str:
    value = _MAILTO_BRACKETS.sub(r"<\1>", value)
    return value.replace("*", "") if "<" in value else value


def _build_original(wrapper: ParsedEmail, inline: _Inline, *, received_at: datetime) -> ParsedEmail:
    headers = inline.headers
    defects: list[str] = ["recovered_from_inline_forward"]
    parsed_addresses: dict[str, tuple[Address, ...]] = {}
    for key in ("from", "to", "cc", "bcc", "reply-to"):
        value = headers.get(key)
        parsed_addresses[key] = parse_address_list(_address_value(value)) if value else ()
        if any(not a.valid for a in parsed_addresses[key]):
            defects.append(f"invalid_address:{key}")

    date_text = headers.get("date")
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    date_flag = ""
    if date_text is None:
        date, date_flag = received_at, "missing"
    else:
        parsed_date = parse_loose_date(date_text)
        if parsed_date is None:
            date, date_flag = received_at, "invalid"
        elif not (datetime(1990, 1, 1, tzinfo=UTC) <= parsed_date <= received_at + timedelta(1)):
            date, date_flag = received_at, "absurd"
        else:
            date = parsed_date
    if date_flag:
        defects.append(f"{date_flag}_date")

    subject = " ".join(decode_header_value(headers.get("subject", "")).split())
    body = inline.body
    message_id = synthesise_message_id(
        from_=headers.get("from", ""),
        to=headers.get("to", ""),
        cc=headers.get("cc", ""),
        date=date_text or "",
        subject=subject,
        body=body,
    )
    original = ParsedEmail(
        message_id=message_id,
        message_id_synthesised=True,
        in_reply_to="",
        references=(),
        date=date,
        date_flag=date_flag,
        subject=subject,
        from_=parsed_addresses["from"],
        sender=None,
        reply_to=parsed_addresses["reply-to"],
        to=parsed_addresses["to"],
        cc=parsed_addresses["cc"],
        bcc=parsed_addresses["bcc"],
        text_body=body,
        html_body="",
        body_truncated=wrapper.body_truncated,
        # the user forwarded the mail with its files: they belong to the original
        attachments=tuple(a for a in wrapper.attachments if not a.inline),
        calendar=(),
        forwarded=(),
        auto_generated="",
        is_draft=False,
        headers=tuple((_CANONICAL_NAMES[k], v) for k, v in headers.items()),
        defects=tuple(dict.fromkeys(defects)),
        size=len(body.encode("utf-8", "surrogatepass")),
    )
    return clean_strings(original)  # the headers' encoded words were decoded here


def _has_sender(parsed: ParsedEmail) -> bool:
    return any(a.valid for a in parsed.from_)


def extract_forwarded_original(wrapper: ParsedEmail, *, received_at: datetime) -> ForwardedOriginal:
    """Find the original inside a forward: attached message first, else inline headers."""
    text = wrapper.text_body or html_to_text(wrapper.html_body)
    found = _find_inline(text) if text else None
    note = text[: found[1]] if found else text
    if wrapper.forwarded and (found is None or len(note.strip()) <= SHORT_NOTE_CHARS):
        original = wrapper.forwarded[0]
        return ForwardedOriginal(
            parsed=original, method="attached", recovered_headers=_has_sender(original)
        )
    if found is None:
        return ForwardedOriginal(parsed=None, method="none", recovered_headers=False)
    original = _build_original(wrapper, found[0], received_at=received_at)
    return ForwardedOriginal(
        parsed=original, method="inline", recovered_headers=_has_sender(original)
    )
