"""Raw RFC 5322 bytes -> ParsedEmail (pure Python, no Django).

Speed: the MIME tree is parsed with ``policy.compat32`` (about 6x faster than
``policy.default``, see NOTES-infra) and only the few headers we use are decoded by hand
(RFC 2047 words, address lists, dates). Well-formed mail gets the very tree the stdlib parser
would build from a faster split (:func:`_fast_tree`); anything unusual goes to the stdlib. The tree is walked iteratively so that depth and
part-count limits are enforced without recursion.

Contract: :func:`parse_email` raises nothing but :class:`MessageRejected`. Damage that
still leaves a usable message is recorded in ``ParsedEmail.defects`` instead.
"""

from __future__ import annotations

import binascii
import hashlib
import quopri
import re
import zoneinfo
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, timezone
from email.header import decode_header
from email.message import Message
from email.parser import HeaderParser, Parser
from email.policy import compat32
from email.utils import collapse_rfc2231_value, parseaddr, parsedate_to_datetime, unquote
from functools import lru_cache
from itertools import pairwise
from typing import Any

from capture.textsafe import clean_strings, clean_text, storable_count, storable_moment
from crm.addresses import InvalidAddress, normalize_address

__all__ = [
    "Address",
    "AttachmentPart",
    "CalendarEvent",
    "MessageRejected",
    "ParseLimits",
    "ParsedEmail",
    "decode_header_value",
    "normalize_message_id",
    "normalize_subject",
    "parse_address_list",
    "parse_calendar",
    "parse_email",
    "synthesise_message_id",
]

SYNTHETIC_ID_DOMAIN = "mailwarden.invalid"


@dataclass(frozen=True)
class ParseLimits:
    max_bytes: int = 50 * 1024 * 1024 + 1024 * 1024  # whole message
    max_depth: int = 20  # MIME nesting depth
    max_parts: int = 500
    max_headers: int = 1000  # top-level header count
    max_body_chars: int = 1_000_000  # text/html body kept up to this; longer -> truncated flag
    max_calendar_events: int = 200  # VEVENTs read per message (the rest are ignored + defect)


class MessageRejected(Exception):
    """Known bad input; the pipeline marks the raw message rejected with ``code``."""

    def __init__(self, code: str, detail: str = "") -> None:
        detail = clean_text(detail)  # it may quote the input, and ends in reason_detail
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Address:
    address: str  # normalised with crm.addresses.normalize_address, "" when invalid
    name: str  # display name, RFC 2047 decoded
    raw: str  # the original text of this address
    valid: bool


@dataclass(frozen=True)
class AttachmentPart:
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    method: str
    summary: str
    organizer: Address | None
    attendees: tuple[Address, ...]
    start: datetime | None
    end: datetime | None
    rrule: str
    location: str
    sequence: int


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    message_id_synthesised: bool
    in_reply_to: str
    references: tuple[str, ...]
    date: datetime
    date_flag: str
    subject: str
    from_: tuple[Address, ...]
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    text_body: str = field(repr=False)
    html_body: str = field(repr=False)
    body_truncated: bool
    attachments: tuple[AttachmentPart, ...]
    calendar: tuple[CalendarEvent, ...]
    forwarded: tuple[ParsedEmail, ...]
    auto_generated: str
    is_draft: bool
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    defects: tuple[str, ...]
    size: int


def _maker(cls: type) -> Callable[..., Any]:
    """A keyword-only constructor for frozen dataclass `cls` that sets the fields straight in
    the instance __dict__ (in field order, as the generated __init__ does through
    object.__setattr__), ~3x faster. Every field is required, so a missing or unknown one is
    a TypeError as with cls(...); a field default or __post_init__ (which it would skip) is
    refused at import."""
    names = [f.name for f in fields(cls)]
    if hasattr(cls, "__post_init__") or any(
        f.default is not MISSING or f.default_factory is not MISSING or not f.init
        for f in fields(cls)
    ):
        raise TypeError(f"{cls.__name__}: _maker supports plain required fields only")
    stores = "".join(f"    d[{name!r}] = {name}\n" for name in names)
    source = (
        f"def make(*, {', '.join(names)}):\n    obj = new(cls)\n    d = obj.__dict__\n"
        f"{stores}    return obj\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(source, namespace)  # noqa: S102 - the source is built from the field names above
    make = namespace["make"]
    make.__qualname__ = f"_new_{cls.__name__}"
    return make


_new_address = _maker(Address)
_new_attachment = _maker(AttachmentPart)
_new_parsed_email = _maker(ParsedEmail)


# --------------------------------------------------------------------------- headers

_FOLD = re.compile(r"\r?\n(?=[ \t])|\r?\n")
_WS = re.compile(r"\s+")


def _fix_surrogates(value: str) -> str:
    """Undo the parser's surrogateescape of raw 8-bit header bytes (UTF-8, else cp1252)."""
    if value.isascii():  # the common case, and ASCII always encodes
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        raw = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no 8-bit byte made (UTF-7): see capture/textsafe.py
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _unfold(value: str) -> str:
    """``_FOLD.sub("", value)``: drop the line breaks of a folded header value.

    _FOLD deletes every CRLF and every other LF and keeps lone CRs; so do the two replaces
    (the first deletes all the original CRLFs, the second the LFs left, all lone ones), ~10x
    faster than the regular expression."""
    if "\n" not in value:
        return value
    return value.replace("\r\n", "").replace("\n", "")


def decode_header_value(value: str) -> str:
    """Unfold a raw header value and decode RFC 2047 encoded words; never raises."""
    if not isinstance(value, str):
        value = str(value)
    value = _fix_surrogates(_unfold(value))
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # malformed encoded words: keep the text as sent
        return value
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        out.append(_decode_bytes(chunk, charset))
    return "".join(out)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate or candidate in ("unknown-8bit", "x-unknown"):
            continue
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):  # unknown label, bad bytes, NUL in the label
            continue
    return data.decode("cp1252", "replace")


def _decoded_headers(raw_headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``tuple((_fix_surrogates(n), decode_header_value(v)) for n, v in raw_headers)`` (str
    values): both give ASCII text back as it is, decode_header_value if it has no line
    break to unfold and no encoded word either."""
    return tuple(
        (
            n if n.isascii() else _fix_surrogates(n),
            v if v.isascii() and "\n" not in v and "=?" not in v else decode_header_value(v),
        )
        for n, v in raw_headers
    )


def _fold_whitespace(value: str) -> str:
    # _WS.sub(" ", value).strip(), ~5x faster: str.split() and the regular expression's \s
    # both split at the characters Py_UNICODE_ISSPACE calls whitespace
    return " ".join(value.split())


# --------------------------------------------------------------------------- addresses


def _split_address_list(value: str) -> list[str]:
    """Split an address-list header into per-address raw chunks.

    Understands quoted strings, comments, angle brackets and RFC 5322 groups
    ("Key accounts: a@x, b@y;" and "undisclosed-recipients:;"): the group name is dropped.
    Semicolons outside a group separate too (Outlook's habit).
    """
    if "," not in value and _split_plain_address_list(value) is not None:
        # one plain piece (the usual From): the walk below keeps it stripped, if not blank
        value = value.strip()
        return [value] if value else []
    chunks = _split_plain_address_list(value)
    if chunks is None:
        chunks = _split_address_list_slow(value)
    chunks = [(c.strip(), sep) for c, sep in chunks if c.strip()]
    # "Doe, John <john@x>" written without quotes: glue a bare name to the next chunk
    # (only across a comma: Outlook separates with ";" and prints names without addresses)
    merged: list[str] = []
    i = 0
    while i < len(chunks):
        chunk, sep = chunks[i]
        if (
            sep == ","
            and "@" not in chunk
            and "<" not in chunk
            and i + 1 < len(chunks)
            and chunks[i + 1][0].find("<") > 0
            and "@" not in chunks[i + 1][0].split("<", 1)[0]
        ):
            merged.append(f"{chunk}, {chunks[i + 1][0]}")
            i += 2
            continue
        merged.append(chunk)
        i += 1
    return merged


def _split_plain_address_list(value: str) -> list[tuple[str, str]] | None:
    """_split_address_list_slow for lists without quotes, comments, escapes, groups or ";"
    in which every ","-separated piece has at most one "<...>" (the usual "Name <addr>,
    addr"): the character walk then splits at every "," and nowhere else. None otherwise."""
    if '"' in value or "(" in value or ")" in value or "\\" in value or ":" in value:
        return None
    if ";" in value:
        return None
    pieces = value.split(",")
    for piece in pieces:
        opening = piece.find("<")
        closing = piece.find(">")
        if opening < 0 and closing < 0:
            continue
        if not (0 <= opening < closing) or piece.count("<") != 1 or piece.count(">") != 1:
            return None
    chunks = [(piece, ",") for piece in pieces]
    chunks[-1] = (pieces[-1], "")
    return chunks


def _split_address_list_slow(value: str) -> list[tuple[str, str]]:
    """The character walk: (text, the separator that ended it) per chunk."""
    chunks: list[tuple[str, str]] = []
    buf: list[str] = []
    quote = False
    escape = False
    angle = 0
    paren = 0
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if ch == "\\" and (quote or paren):
            buf.append(ch)
            escape = True
            continue
        if quote:
            buf.append(ch)
            if ch == '"':
                quote = False
            continue
        if ch == '"' and not paren:
            quote = True
        elif ch == "(":
            paren += 1
        elif ch == ")" and paren:
            paren -= 1
        elif not paren:
            if ch == "<":
                angle += 1
            elif ch == ">" and angle:
                angle -= 1
            elif not angle and ch in ",;":
                chunks.append(("".join(buf), ch))
                buf = []
                continue
            elif not angle and ch == ":":
                # group display name ends here: drop it
                buf = []
                continue
        buf.append(ch)
    chunks.append(("".join(buf), ""))
    return chunks


def _make_address(raw: str, name: str, addr: str) -> Address:
    name = decode_header_value(name).strip().strip('"').strip()
    address = _normalized(addr)
    return _new_address(address=address or "", name=name, raw=raw, valid=address is not None)


@lru_cache(maxsize=4096)
def _normalized(addr: str) -> str | None:
    """normalize_address(addr) (a pure function of its text), None for an invalid one; kept
    for the correspondents that recur from message to message."""
    try:
        return normalize_address(addr)
    except InvalidAddress:
        return None


_ANGLE_ADDR = re.compile(r"^(?P<name>[^<>]*)<(?P<addr>[^<>]*)>\s*(?:\([^()]*\))?$")


def _unquote_name(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def _parse_one_address(raw: str) -> Address:
    match = _ANGLE_ADDR.match(raw)
    if match:
        # "Name <addr>" (the common case): take it literally, so that unquoted commas or
        # a mangled address stay visible instead of being rewritten by parseaddr
        name = match.group("name")
        if name.isascii() and '"' not in name and "=?" not in name and "\n" not in name:
            # _make_address(raw, _unquote_name(name), addr): no quotes to take off, and
            # decode_header_value finds nothing to unfold, fix or decode
            name = name.strip()
            address = _normalized(match.group("addr"))
            return _new_address(
                address=address or "", name=name, raw=raw, valid=address is not None
            )
        return _make_address(raw, _unquote_name(name), match.group("addr"))
    name, addr = parseaddr(raw)
    if not addr and "<" not in raw:
        addr = raw
    if " " in addr.strip():
        # "Jane Doe jane@x.com" without brackets: the last token with an @ is the address
        tokens = addr.split()
        at = [t for t in tokens if "@" in t]
        if len(at) == 1 and at[0] == tokens[-1]:
            name, addr = " ".join(tokens[:-1]), at[0]
    return _make_address(raw, name, addr)


def parse_address_list(value: str) -> tuple[Address, ...]:
    """Parse an address-list header value (raw or decoded) into Address objects."""
    value = _fix_surrogates(_unfold(value))
    return tuple(_parse_one_address(chunk) for chunk in _split_address_list(value))


# --------------------------------------------------------------------------- ids, subject, date

_MSGID_BRACKETED = re.compile(r"<([^<>]*)>")


def _clean_id(value: str) -> str:
    value = "".join(value.split())  # _WS.sub("", value).strip(), see _fold_whitespace
    local, at, domain = value.partition("@")
    if not at or not local or not domain or "@" in domain or len(value) > 998:
        return ""
    return value


def normalize_message_id(value: str) -> str:
    """Return the inner text of a Message-ID ("" if nothing usable: it must be left@right)."""
    if not value:
        return ""
    value = _fix_surrogates(value)
    match = _MSGID_BRACKETED.search(value)
    if match:
        return _clean_id(match.group(1))
    return _clean_id(value.strip())


def _parse_references(value: str) -> tuple[str, ...]:
    if not value:
        return ()
    value = _fix_surrogates(value)
    candidates = _MSGID_BRACKETED.findall(value) or value.split()
    seen: dict[str, None] = {}
    for candidate in candidates:
        cleaned = _clean_id(candidate)
        if cleaned and cleaned not in seen:
            seen[cleaned] = None
    return tuple(seen)


_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:"
    r"\[[^\[\]]{0,60}\]"  # [sales] list tags
    r"|(?:re|aw|sv|vs|fwd?|wg|tr|r[ée]f|antw|odp|rif|r)\s*(?:\[\d+\]|\(\d+\))?\s*:"  # Re[2]:
    r")\s*",
    re.IGNORECASE,
)


def normalize_subject(subject: str) -> str:
    """Strip reply/forward prefixes and list tags, lowercase, collapse whitespace (threading)."""
    text = _fold_whitespace(subject or "")
    while True:
        stripped = _SUBJECT_PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return text.lower().strip()


_EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# "Mon, 10 Mar 2025 13:53:00 +0000", one space apart, optionally a "(UTC)"-style comment
# after the zone. A 4-digit year from 1000 (no 2-digit year rule), seconds given, a numeric
# zone other than -0000 (the naive "unknown zone" case): the fields _parsedate_tz reads.
_PLAIN_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([1-9][0-9]{3}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})(?: \([A-Za-z]{1,5}\))?"
)
_ZONES: dict[int, timezone] = {}  # timezone(timedelta(seconds=offset)) by offset (immutable)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def _plain_date(text: str) -> datetime | None:
    """``parsedate_to_datetime(text)`` for _PLAIN_DATE text (stripped), else None (also when
    the fields are out of range: the stdlib then raises what it raises)."""
    match = _PLAIN_DATE.fullmatch(text)
    if match is None:
        return None
    day, month, year, hh, mm, ss, sign, tzh, tzm = match.groups()
    offset = int(tzh) * 3600 + int(tzm) * 60
    if sign == "-":
        if not offset:
            return None  # -0000: a naive datetime
        offset = -offset
    try:
        zone = _ZONES.get(offset)
        if zone is None:
            zone = timezone(timedelta(seconds=offset))
            if len(_ZONES) < 256:
                _ZONES[offset] = zone
        return datetime(int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=zone)
    except (ValueError, OverflowError):
        return None


def _parse_date(value: str | None, received_at: datetime) -> tuple[datetime, str]:
    if value is None or not value.strip():
        return received_at, "missing"
    try:
        text = _fix_surrogates(_unfold(value)).strip()
        parsed = _plain_date(text) or parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return received_at, "invalid"
    if parsed is None:
        return received_at, "invalid"
    parsed = _aware(parsed)
    try:
        absurd = parsed < _EARLIEST_DATE or parsed > received_at + timedelta(days=1)
    except OverflowError:
        absurd = True
    if absurd:
        return received_at, "absurd"
    return parsed, ""


def _content_hash(from_: str, to: str, cc: str, date_: str, subject: str, body: str) -> str:
    def norm(text: str) -> str:
        return _fold_whitespace(text)

    body = "\n".join(line.rstrip() for line in body.replace("\r\n", "\n").split("\n")).strip()
    material = "\x00".join((norm(from_), norm(to), norm(cc), norm(date_), norm(subject), body))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def synthesise_message_id(
    *, from_: str, to: str, cc: str, date: str, subject: str, body: str
) -> str:
    """A stable Message-ID for mail without one: sha256 over the header values and body.

    Inputs are the decoded From, To, Cc, Date and Subject values with whitespace folded
    (so that re-folding by a relay does not change the id) and the text body (HTML body
    when there is no text) with line endings normalised and trailing spaces stripped.
    Transport headers (Received, Return-Path, Delivered-To, DKIM...) are deliberately not
    part of it, so BCC capture and mailbox sync of the same mail get the same id.
    """
    return f"{_content_hash(from_, to, cc, date, subject, body)}@{SYNTHETIC_ID_DOMAIN}"


# --------------------------------------------------------------------------- bodies

_LATIN1_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "iso_8859-1"})
_ASCII_LABELS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "646"})


@lru_cache(maxsize=256)
def _codec_for(charset: str) -> str | None:
    import codecs

    charset = charset.strip().strip("\"'").lower()
    if charset in _LATIN1_LABELS:
        # WHATWG: iso-8859-1 labels mean windows-1252 (Outlook's smart quotes live at 0x80-0x9f)
        return "cp1252"
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return None


def _decode_text(payload: bytes, charset: str | None, defects: list[str]) -> str:
    """Decode a text part: declared charset -> utf-8 -> cp1252 -> latin-1. Never raises."""
    declared = (charset or "us-ascii").strip().strip("\"'").lower()
    if declared in _ASCII_LABELS:
        if payload.isascii():
            return payload.decode("ascii")
        codec: str | None = None
        mislabelled = True
    else:
        codec = _codec_for(declared)
        mislabelled = False
        if codec is None:
            defects.append("unknown_charset")
    if codec is not None:
        try:
            return payload.decode(codec)
        except (UnicodeDecodeError, LookupError):
            mislabelled = True
        except Exception:  # some codecs raise odd errors on junk input
            mislabelled = True
    if mislabelled:
        defects.append("charset_mislabelled")
    for fallback in ("utf-8", "cp1252"):
        if fallback == codec:
            continue
        try:
            return payload.decode(fallback)
        except UnicodeDecodeError:
            continue
    return payload.decode("latin-1")


# str.replace("\r\n", "\n") is about 3x slower than this literal regex on bodies with many
# lines (same result: both replace non-overlapping matches left to right).
_CRLF = re.compile("\r\n")
# Left to get_payload: base64 (it records decoding defects on the part) and uuencode.
_STDLIB_DECODED_CTES = frozenset({"base64", "x-uuencode", "uuencode", "uue", "x-uue"})


def _decoded_payload(part: Message, first: dict[str, str] | None = None) -> bytes | None:
    """``part.get_payload(decode=True)``; for an ASCII text payload (no surrogate-escaped
    8-bit bytes, nothing to re-encode) in quoted-printable, base64 or a pass-through
    encoding this is the stdlib's own code minus its surrogate scan of the whole payload.

    Quoted-printable: quopri.decodestring is binascii.a2b_qp (header=False) when binascii
    has it, as CPython's always does. Base64: the stdlib decodes
    ``b"".join(payload.splitlines())`` (bytes.splitlines breaks at CR, LF and CRLF only: the
    same as deleting every CR and LF) with email._encoded_words.decode_b, which for a length
    that is a multiple of 4 first tries ``b64decode(data, validate=True)``, i.e.
    ``a2b_base64(data, strict_mode=True)``, and records no defect when that succeeds; here
    the same call, and the stdlib for the rest (bad padding or characters: its defects)."""
    payload = part._payload
    if isinstance(payload, str) and payload.isascii():  # never a multipart: that is a list
        value = (
            part.get("content-transfer-encoding")
            if first is None
            else _get(part, first, "content-transfer-encoding")
        )
        cte = "" if value is None else str(value).lower()
        if cte == "quoted-printable":
            return _a2b_qp(payload.encode("ascii"))
        if cte == "base64":
            data = payload.encode("ascii").translate(None, b"\r\n")
            if not len(data) % 4:
                try:
                    return _a2b_base64(data, strict_mode=True)
                except binascii.Error:
                    pass
        elif cte not in _STDLIB_DECODED_CTES:  # 7bit, 8bit, binary, none, unknown: as is
            return payload.encode("ascii")
    return part.get_payload(decode=True)


_a2b_qp = quopri.a2b_qp or quopri.decodestring  # quopri imports it from binascii
_a2b_base64 = binascii.a2b_base64


def _part_payload(part: Message, defects: list[str], first: dict[str, str] | None = None) -> bytes:
    try:
        payload = _decoded_payload(part, first)
    except Exception:  # stdlib decoders on hostile input
        defects.append("undecodable_payload")
        return b""
    if payload is None:
        return b""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogateescape")
    for defect in part.defects:
        name = type(defect).__name__
        if name.startswith("InvalidBase64"):
            defects.append("bad_base64")
    return payload


def _first_values(part: Message) -> dict[str, str]:
    """{lowercased name: value of its first occurrence} over ``part._headers``: the lookup
    table of :func:`_get`, built once per part instead of one header walk per get()."""
    first: dict[str, str] = {}
    for name, value in part._headers:
        first.setdefault(name.lower(), value)
    return first


def _get(part: Message, first: dict[str, str], name: str) -> str | None:
    """``part.get(name)`` (`name` lowercase, `first` = _first_values(part)). compat32's
    header_fetch_parse hands an ASCII str back as it is (no surrogates: nothing to wrap in
    a Header); anything else is left to part.get."""
    value = first.get(name)
    if value is None or (value.__class__ is str and value.isascii()):
        return value
    return part.get(name)


def _content_type(part: Message, first: dict[str, str]) -> str:
    """``part.get_content_type()`` for a plain (ASCII str) Content-Type, else the stdlib's."""
    value = first.get("content-type")
    if value is None:
        return part.get_default_type()
    if value.__class__ is not str or not value.isascii():
        return part.get_content_type()
    ctype = value.partition(";")[0].strip().lower()  # _splitparam(value)[0].lower()
    return ctype if ctype.count("/") == 1 else "text/plain"


def _header(part: Message, name: str, first: dict[str, str] | None = None) -> str:
    """First raw value of a header on a part (compat32 may return Header objects)."""
    value = part.get(name) if first is None else _get(part, first, name)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _plain_params(
    part: Message, header: str, first: dict[str, str] | None = None
) -> dict[str, str] | None:
    """``{name: part.get_param(name, header=header)}`` for every parameter name (lowercase;
    the first occurrence wins; {} when there is no such header), or None when the value is
    not plain and the stdlib must read it.

    Plain: an ASCII str (compat32 gives a Header object for 8-bit bytes) without "\\" or
    "*" (no quoted pairs, no RFC 2231) in which every ";"-separated piece has an even number
    of '"'. For such a value the stdlib's _parseparam splits at every ";", decode_params
    changes nothing (its unquote/quote round trip is exact without backslashes) and
    get_param returns ``unquote(value.strip())`` of the first piece whose name matches: the
    whole text of a piece without "=", else what is before the first "=" (stripped), the
    piece before the first ";" (the content type itself) included.
    """
    value = part.get(header) if first is None else _get(part, first, header)
    if value is None:
        return {}
    if not isinstance(value, str) or not value.isascii() or "\\" in value or "*" in value:
        return None
    params: dict[str, str] = {}
    for piece in value.split(";"):
        if piece.count('"') % 2:
            return None  # a quoted ";": the stdlib joins the pieces
        name, eq, val = piece.partition("=")
        if eq:
            # unquote(val.strip()), inlined: without backslashes it only drops "..." or <...>
            val = val.strip()
            if len(val) > 1 and (
                (val[0] == '"' and val[-1] == '"') or (val[0] == "<" and val[-1] == ">")
            ):
                val = val[1:-1]
            params.setdefault(name.strip().lower(), val)
        else:
            params.setdefault(piece.strip().lower(), "")
    return params


def _boundary(part: Message, first: dict[str, str] | None = None) -> str | None:
    """``part.get_boundary()``: unquote(get_param("boundary")).rstrip() for plain values."""
    ct_params = _plain_params(part, "content-type", first)
    if ct_params is None:
        return part.get_boundary()
    boundary = ct_params.get("boundary")
    return None if boundary is None else unquote(boundary).rstrip()


def _content_charset(part: Message, ct_params: dict[str, str] | None) -> str | None:
    """``part.get_content_charset()``, from the plain Content-Type parameters if any."""
    if ct_params is None:
        return part.get_content_charset()
    charset = ct_params.get("charset")
    return None if charset is None else charset.lower()  # ASCII: the us-ascii check passes


def _filename(
    part: Message, ct_params: dict[str, str] | None, cd_params: dict[str, str] | None
) -> str:
    """The attachment file name; the params are _plain_params of Content-Type and
    Content-Disposition (None: not plain, use the stdlib)."""
    if ct_params is not None and cd_params is not None:
        # part.get_filename() or part.get_param("name"): no tuples (no RFC 2231) here, and
        # collapse_rfc2231_value(text) is unquote(text)
        raw = cd_params.get("filename")
        if raw is None:
            raw = ct_params.get("name")
        raw = (unquote(raw).strip() if raw is not None else None) or ct_params.get("name")
    else:
        try:
            raw = part.get_filename() or part.get_param("name", header="content-type")
        except Exception:  # broken RFC 2231 continuations
            return ""
    if raw is None:
        return ""
    if isinstance(raw, tuple):
        raw = collapse_rfc2231_value(raw)
    name = decode_header_value(str(raw)).strip().strip('"')
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    return "" if name in (".", "..") else name


def _disposition(part: Message, first: dict[str, str] | None = None) -> str:
    value = _header(part, "content-disposition", first)
    return value.split(";", 1)[0].strip().lower() if value else ""


# --------------------------------------------------------------------------- calendar

_ICAL_ESCAPES = re.compile(r"\\([\\;,nN])")
_DURATION = re.compile(
    r"^(?P<sign>[+-])?P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
# The Windows zone names Outlook/Exchange put in TZID, mapped to IANA (CLDR windowsZones).
_WINDOWS_ZONES = {
    "w. europe standard time": "Europe/Berlin",
    "central europe standard time": "Europe/Budapest",
    "central european standard time": "Europe/Warsaw",
    "romance standard time": "Europe/Paris",
    "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik",
    "e. europe standard time": "Europe/Chisinau",
    "fle standard time": "Europe/Kiev",
    "gtb standard time": "Europe/Bucharest",
    "russian standard time": "Europe/Moscow",
    "eastern standard time": "America/New_York",
    "central standard time": "America/Chicago",
    "mountain standard time": "America/Denver",
    "pacific standard time": "America/Los_Angeles",
    "india standard time": "Asia/Kolkata",
    "china standard time": "Asia/Shanghai",
    "tokyo standard time": "Asia/Tokyo",
    "aus eastern standard time": "Australia/Sydney",
    "utc": "UTC",
}


@lru_cache(maxsize=256)
def _zone(tzid: str) -> zoneinfo.ZoneInfo | None:
    key = tzid.strip().strip('"').lstrip("/")
    key = _WINDOWS_ZONES.get(key.lower(), key)
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        return None


def _unescape_ical(value: str) -> str:
    return _ICAL_ESCAPES.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _split_ical_line(line: str) -> tuple[str, dict[str, str], str]:
    """NAME;PARAM=a;PARAM="b:c":VALUE -> (NAME, {PARAM: value}, VALUE)."""
    params: dict[str, str] = {}
    quote = False
    colon = -1
    for i, ch in enumerate(line):
        if ch == '"':
            quote = not quote
        elif ch == ":" and not quote:
            colon = i
            break
    if colon < 0:
        return line.upper(), params, ""
    head, value = line[:colon], line[colon + 1 :]
    name, *rest = head.split(";")
    for item in rest:
        key, _, val = item.partition("=")
        params[key.strip().upper()] = val.strip().strip('"')
    return name.strip().upper(), params, value


def _ical_datetime(value: str, params: dict[str, str], defects: list[str]) -> datetime | None:
    value = value.strip()
    try:
        if params.get("VALUE", "").upper() == "DATE" or (len(value) == 8 and value.isdigit()):
            d = date(int(value[:4]), int(value[4:6]), int(value[6:8]))
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        utc = value.endswith("Z")
        naive = datetime.strptime(value.rstrip("Z")[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        defects.append("calendar_invalid_datetime")
        return None
    if utc:
        return naive.replace(tzinfo=UTC)
    tzid = params.get("TZID")
    if tzid:
        tz = _zone(tzid)
        if tz is None:
            defects.append("calendar_unknown_tzid")
            return naive.replace(tzinfo=UTC)
        return naive.replace(tzinfo=tz)
    defects.append("calendar_floating_time")
    return naive.replace(tzinfo=UTC)


def _ical_duration(value: str) -> timedelta | None:
    match = _DURATION.match(value.strip().upper())
    if not match:
        return None
    parts = {k: int(v) for k, v in match.groupdict().items() if v and k != "sign"}
    delta = timedelta(
        weeks=parts.get("w", 0),
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )
    return -delta if match.group("sign") == "-" else delta


def _ical_address(value: str, params: dict[str, str]) -> Address:
    addr = value.strip()
    if addr.lower().startswith("mailto:"):
        addr = addr[7:]
    return _make_address(value.strip(), params.get("CN", ""), addr)


def parse_calendar(text: str, defects: list[str], max_events: int = 200) -> list[CalendarEvent]:
    """Read the VEVENTs of an iCalendar (RFC 5545) text; tolerant of junk, never raises."""
    lines: list[str] = []
    for raw_line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw_line[:1] in (" ", "\t") and lines:
            lines[-1] += raw_line[1:]  # RFC 5545 3.1 unfolding
        elif raw_line:
            lines.append(raw_line)
    events: list[CalendarEvent] = []
    method = ""
    current: dict[str, list[tuple[dict[str, str], str]]] | None = None
    nested = 0  # VALARM etc. inside a VEVENT
    for line in lines:
        name, params, value = _split_ical_line(line)
        if name == "BEGIN":
            if value.strip().upper() == "VEVENT" and current is None:
                current = {}
            elif current is not None:
                nested += 1
            continue
        if name == "END":
            if current is not None and nested:
                nested -= 1
            elif current is not None and value.strip().upper() == "VEVENT":
                if len(events) >= max_events:
                    defects.append("calendar_too_many_events")
                    break
                events.append(_build_event(current, method, defects))
                current = None
            continue
        if current is None:
            if name == "METHOD":
                method = value.strip().upper()
            continue
        if not nested:
            current.setdefault(name, []).append((params, value))
    return events


def _build_event(
    props: dict[str, list[tuple[dict[str, str], str]]], method: str, defects: list[str]
) -> CalendarEvent:
    def first(name: str) -> tuple[dict[str, str], str]:
        values = props.get(name)
        return values[0] if values else ({}, "")

    start_params, start_value = first("DTSTART")
    start = storable_moment(
        _ical_datetime(start_value, start_params, defects) if start_value else None
    )
    end_params, end_value = first("DTEND")
    end = storable_moment(_ical_datetime(end_value, end_params, defects) if end_value else None)
    if end is None and start is not None:
        with suppress(OverflowError):  # a duration beyond what a timedelta or datetime holds
            duration = _ical_duration(first("DURATION")[1])
            if duration is not None:
                end = storable_moment(start + duration)
    organizer_params, organizer_value = first("ORGANIZER")
    sequence_text = first("SEQUENCE")[1].strip()
    return CalendarEvent(
        uid=first("UID")[1].strip(),
        method=method,
        summary=_unescape_ical(first("SUMMARY")[1]).strip(),
        organizer=_ical_address(organizer_value, organizer_params) if organizer_value else None,
        attendees=tuple(_ical_address(v, p) for p, v in props.get("ATTENDEE", [])),
        start=start,
        end=end,
        rrule=first("RRULE")[1].strip(),
        location=_unescape_ical(first("LOCATION")[1]).strip(),
        sequence=storable_count(sequence_text),
    )


# --------------------------------------------------------------------------- classification

_OOO_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto[- ]?reply|autoreply|"
    r"abwesenheitsnotiz|automatische antwort|abwesend|r[ée]ponse automatique|absence|"
    r"respuesta autom[aá]tica|risposta automatica|fuori ufficio|automatisch antwoord|"
    r"afwezig|autosvar|fr[åa]nvaro|poza biurem|odpowied[źz] automatyczna)\b\s*(?::|$)",
    re.IGNORECASE,
)


def _classify(first: dict[str, str], content_type: str, report_type: str, subject: str) -> str:
    if content_type == "multipart/report" and report_type == "delivery-status":
        return "dsn"
    auto_submitted = first.get("auto-submitted", "").strip().lower()
    auto_submitted = auto_submitted.split(";", 1)[0].strip()
    if (
        first.get("x-autoreply", "").strip()
        or first.get("x-autorespond", "").strip()
        or _OOO_SUBJECT.match(subject)
    ):
        return "ooo"
    if auto_submitted and auto_submitted != "no":
        return "auto-replied" if auto_submitted == "auto-replied" else "auto-generated"
    if content_type == "multipart/report":
        return "auto-generated"  # read receipts (disposition-notification) and the like
    precedence = first.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return "bulk"
    if "list-id" in first or "list-unsubscribe" in first:
        return "bulk"
    if precedence == "auto_reply":
        return "auto-replied"
    return ""


def _is_draft(first: dict[str, str]) -> bool:
    if first.get("x-unsent", "").strip().lower() in ("1", "yes", "true"):
        return True
    if "x-mozilla-draft-info" in first:
        return True
    return first.get("x-uniform-type-identifier", "").strip() == "com.apple.mail-draft"


# --------------------------------------------------------------------------- the walk

_CORE_HEADERS = frozenset(
    {
        "from", "to", "cc", "bcc", "date", "subject", "message-id", "received",
        "return-path", "sender", "reply-to", "mime-version", "content-type",
        "delivered-to", "in-reply-to", "references", "x-unsent",
    }
)  # fmt: skip

_ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "bcc")


class _Budget:
    """Part counter shared by a message and the messages forwarded inside it."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


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
    """`firsts`: _first_values of msg's parts by id() where known (see _message_tree)."""
    if firsts is None:
        firsts = {}
    # msg.raw_items() is msg._headers as they are
    raw_headers = [
        (k.strip() if k.__class__ is str else str(k).strip(), v if isinstance(v, str) else str(v))
        for k, v in msg._headers
    ]
    if len(raw_headers) > limits.max_headers:
        raise MessageRejected("too_many_headers", f"{len(raw_headers)} headers")
    first: dict[str, str] = {}
    for name, value in raw_headers:
        first.setdefault(name.lower(), value)

    # addresses
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
    sender = addresses["sender"][0] if addresses["sender"] else None

    # ids
    raw_id = first.get("message-id")
    message_id = normalize_message_id(raw_id or "")
    if len(message_id) > 995:  # longer than its column (EmailMessage): one is synthesised
        message_id = ""
    if raw_id is None:
        defects.append("missing_message_id")
    elif not message_id:
        defects.append("invalid_message_id")
    in_reply_to_ids = _parse_references(first.get("in-reply-to", ""))
    in_reply_to = in_reply_to_ids[0] if in_reply_to_ids else ""
    references = _parse_references(first.get("references", ""))

    # date
    msg_date, date_flag = _parse_date(first.get("date"), received_at)
    if date_flag:
        defects.append(f"{date_flag}_date")

    subject = _fold_whitespace(decode_header_value(first.get("subject", "")))

    # bodies and parts
    text_body: str | None = None
    html_body: str | None = None
    truncated = False
    attachments: list[AttachmentPart] = []
    calendar: list[CalendarEvent] = []
    forwarded: list[ParsedEmail] = []
    # stack of (part, depth, inside multipart/related); depth 0 is this message itself
    stack: list[tuple[Message, int, bool]] = [(msg, depth, False)]
    msg_first = firsts.get(id(msg))
    if msg_first is None:
        msg_first = _first_values(msg)
    while stack:
        part, part_depth, in_related = stack.pop()
        if part_depth > limits.max_depth:
            raise MessageRejected("too_deep", f"MIME nesting deeper than {limits.max_depth}")
        budget.parts += 1
        if budget.parts > limits.max_parts:
            raise MessageRejected("too_many_parts", f"more than {limits.max_parts} parts")
        for defect in part.defects:
            defects.append(type(defect).__name__)
        part_first = firsts.get(id(part))
        if part_first is None:
            part_first = _first_values(part)
        try:
            ctype = _content_type(part, part_first)
        except Exception:
            ctype = "application/octet-stream"
        maintype = ctype.partition("/")[0]
        # is_multipart() first: get_payload() without decode=True re-decodes 8-bit text
        # (slow, and it raises on junk charset names)
        payload_obj = part.get_payload() if part.is_multipart() else None
        if (
            maintype == "message"
            and isinstance(payload_obj, list)
            and ctype != "message/delivery-status"
        ):
            # message/rfc822 (and message/global): a forwarded mail, parsed on its own
            cte = (_header(part, "content-transfer-encoding", part_first) or "").strip().lower()
            for inner in payload_obj:
                if not isinstance(inner, Message):
                    continue
                if cte in ("base64", "quoted-printable"):
                    # RFC 2046 5.2.1 allows 7bit, 8bit or binary only, but some clients
                    # encode an attached .eml anyway; the stdlib then parses the encoded
                    # text as the message (no headers, a base64 body).
                    defects.append("encoded_message_part")
                    inner = _decoded_message(inner, cte, defects)
                inner_defects: list[str] = []
                try:
                    inner_size = len(inner.as_bytes())
                except Exception:  # size is informative only
                    inner_size = 0
                forwarded.append(
                    _build(
                        inner,
                        size=inner_size,
                        depth=part_depth + 1,
                        budget=budget,
                        received_at=received_at,
                        limits=limits,
                        defects=inner_defects,
                    )
                )
            continue
        if isinstance(payload_obj, list):
            children = [p for p in payload_obj if isinstance(p, Message)]
            related = ctype == "multipart/related"
            for child in reversed(children):
                stack.append((child, part_depth + 1, related))
            continue
        if ctype == "message/delivery-status":
            continue  # machine-readable DSN fields; the human text is in text/plain
        disposition = _disposition(part, part_first)
        ct_params = _plain_params(part, "content-type", part_first)
        filename = _filename(
            part, ct_params, _plain_params(part, "content-disposition", part_first)
        )
        is_attachment = disposition == "attachment" or bool(filename)
        if ctype in ("text/plain", "text/html") and not is_attachment:
            if (ctype == "text/plain" and text_body is None) or (
                ctype == "text/html" and html_body is None
            ):
                payload = _part_payload(part, defects, part_first)
                text = _decode_text(payload, _content_charset(part, ct_params), defects)
                text = _CRLF.sub("\n", text)  # text.replace("\r\n", "\n"), ~3x faster
                if len(text) > limits.max_body_chars:
                    text = text[: limits.max_body_chars]
                    truncated = True
                if ctype == "text/plain":
                    text_body = text
                else:
                    html_body = text
            continue
        payload = _part_payload(part, defects, part_first)
        if ctype in ("text/calendar", "application/ics"):
            charset = _content_charset(part, ct_params) or "utf-8"
            text = _decode_text(payload, charset, defects)
            calendar.extend(parse_calendar(text, defects, limits.max_calendar_events))
            if not is_attachment:
                continue
        if ctype == "text/rfc822-headers" and not is_attachment:
            continue
        content_id = _header(part, "content-id", part_first).strip().strip("<>").strip()
        inline = bool(content_id and in_related) or (
            disposition == "inline" and maintype == "image"
        )
        attachments.append(
            _new_attachment(
                filename=filename,
                content_type=ctype,
                size=len(payload),
                sha256=hashlib.sha256(payload).hexdigest(),
                inline=inline,
                content_id=_fix_surrogates(content_id),
                payload=payload,
            )
        )

    text_body = text_body or ""
    html_body = html_body or ""
    headers = _decoded_headers(raw_headers)

    message_id_synthesised = not message_id
    if message_id_synthesised:
        decoded = {n.lower(): v for n, v in reversed(headers)}
        message_id = synthesise_message_id(
            from_=decoded.get("from", ""),
            to=decoded.get("to", ""),
            cc=decoded.get("cc", ""),
            date=decoded.get("date", ""),
            subject=subject,
            body=text_body or html_body,
        )

    ct_params = _plain_params(msg, "content-type", msg_first)
    if ct_params is not None:
        report_type = ct_params.get("report-type") or ""
    else:
        try:
            report_type = (msg.get_param("report-type") or "") if msg.get_content_type() else ""
        except Exception:
            report_type = ""
    if not isinstance(report_type, str):
        report_type = collapse_rfc2231_value(report_type)
    # dedupe calendar events that clients send twice (alternative part + invite.ics)
    events = list({(e.uid, e.sequence, e.method, e.start): e for e in calendar}.values())

    built = _new_parsed_email(
        message_id=message_id,
        message_id_synthesised=message_id_synthesised,
        in_reply_to=in_reply_to,
        references=references,
        date=msg_date,
        date_flag=date_flag,
        subject=subject,
        from_=addresses["from"],
        sender=sender,
        reply_to=addresses["reply-to"],
        to=addresses["to"],
        cc=addresses["cc"],
        bcc=addresses["bcc"],
        text_body=text_body,
        html_body=html_body,
        body_truncated=truncated,
        attachments=tuple(attachments),
        calendar=tuple(events),
        forwarded=tuple(forwarded),
        auto_generated=_classify(
            first, _content_type(msg, msg_first), report_type.lower(), subject
        ),
        is_draft=_is_draft(first),
        headers=headers,
        defects=_dedupe(defects),
        size=size,
    )
    # every str in it storable (capture/textsafe.py); a forwarded one was cleaned when built
    return clean_strings(built)


_BARE_LF = re.compile(rb"(?<!\r)\n")
# A LF that ends no CRLF, a CR that starts none. Both patterns start with a literal, so a
# search is a C scan for that byte (~2x faster than the three counts lf, crlf and cr it
# replaces); _BARE_LF, which starts with the look-behind, tries every position (~0.5 ms).
_LONE_LF = re.compile(rb"\n(?<!\r\n)")
_LONE_CR = re.compile(rb"\r(?!\n)")


def parse_email(
    raw: bytes, *, received_at: datetime, limits: ParseLimits = ParseLimits()
) -> ParsedEmail:
    """Parse raw RFC 5322 bytes; raises only MessageRejected (with a reason code)."""
    try:
        return _parse_email(raw, received_at=_aware(received_at), limits=limits)
    except MessageRejected:
        raise
    except RecursionError as e:
        raise MessageRejected("too_deep", "nesting exhausted the parser") from e
    except Exception as e:  # the contract: bad input is rejected, never a crash
        raise MessageRejected("unparseable", f"{type(e).__name__}: {e}"[:200]) from e


def _parse_email(raw: bytes, *, received_at: datetime, limits: ParseLimits) -> ParsedEmail:
    if not isinstance(raw, bytes):
        raw = bytes(raw)
    size = len(raw)
    if size > limits.max_bytes:
        raise MessageRejected("too_large", f"{size} bytes > {limits.max_bytes}")
    data = raw
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = data.lstrip(b"\r\n\t ")
    if not data or data.isspace():  # not data.strip(), without copying the message
        raise MessageRejected("empty")
    defects: list[str] = []
    firsts: dict[int, dict[str, str]] = {}
    msg = _crlf_tree(data, defects, firsts)
    if not any(str(k).strip().lower() in _CORE_HEADERS for k, _ in msg._headers):
        raise MessageRejected("not_email", "no RFC 5322 header found")
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


# --------------------------------------------------------------------------- the tree


def _crlf_tree(
    data: bytes, defects: list[str], firsts: dict[int, dict[str, str]] | None = None
) -> Message:
    """The tree of a whole message's bytes, every lone LF first made a CRLF (defect bare_lf)."""
    if _LONE_LF.search(data):
        defects.append("bare_lf")
        data = _BARE_LF.sub(b"\r\n", data)  # every LF now ends a CRLF
    return _message_tree(data, crlf_only=_LONE_CR.search(data) is None, firsts=firsts)


def _message_tree(
    data: bytes, *, crlf_only: bool = False, firsts: dict[int, dict[str, str]] | None = None
) -> Message:
    """``email.message_from_bytes(data, policy=compat32)``, faster for well-formed mail.

    `crlf_only`: the caller knows every CR and LF in `data` belongs to a CRLF (see
    _fast_tree). `firsts`: filled with _first_values of the parts of a fast tree, by id()
    (left empty for a stdlib tree)."""
    text = data.decode("ascii", "surrogateescape")  # what BytesParser does
    tree = _fast_tree(text, crlf_only=crlf_only, firsts=firsts)
    if tree is not None:
        return tree
    if firsts:
        firsts.clear()  # parts of an abandoned tree: their ids may be reused
    return Parser(policy=compat32).parsestr(text)


def _decoded_message(inner: Message, cte: str, defects: list[str]) -> Message:
    """The message inside a base64 or quoted-printable message/* part (see _build): the
    encoded text is what the stdlib parsed as `inner`, given back unchanged by as_string
    (maxheaderlen=0: no refolding); a message without headers is only its payload. A
    "base64" part whose text parsed with headers is not base64 (that alphabet has no colon):
    it is kept as parsed."""
    if inner._headers or not isinstance(inner._payload, str):
        if cte == "base64":
            return inner
        encoded = inner.as_string()
    else:
        encoded = inner._payload
    data = encoded.encode("ascii", "surrogateescape")
    try:
        # a2b_base64 (not strict) skips characters outside the alphabet
        data = _a2b_base64(data) if cte == "base64" else _a2b_qp(data)
    except (binascii.Error, ValueError):
        return inner
    return _crlf_tree(data.lstrip(b"\r\n\t "), defects)


class _NotSimple(Exception):
    """The fast split cannot vouch for this input: the stdlib parser takes it."""


_HEADER_PARSER = HeaderParser(policy=compat32)

# A header block of plain "Name: value" fields (an RFC 5322 ftext name: printable ASCII but
# ":") and their continuation lines, CRLF line ends only. The feed parser reads such a block
# without a defect or a special case (no leading continuation, no From_ line, no line that
# is not a header): each field becomes (name, value) with the blanks after the colon and the
# final CRLF dropped and the inner CRLFs kept (compat32 header_source_parse).
_FIELD_NAME = r"[\041-\071\073-\176]+"
_HEADER_BLOCK = re.compile(rf"(?:{_FIELD_NAME}:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*")
_HEADER_FIELD = re.compile(rf"({_FIELD_NAME}):[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n")


def _parse_header_block(block: str) -> Message:
    """``HeaderParser(policy=compat32).parsestr(block + "\r\n")`` for a block of CRLF lines.

    Plain blocks (the regular expression above) are split here; anything else goes to the
    stdlib, which then records its defects as usual.

    One pass: _HEADER_FIELD.split gives [between, name, value, between, name, value, ...,
    between]. The block is a _HEADER_BLOCK exactly when every `between` is empty (the
    fields follow each other from the start to the end; a continuation line, starting
    with a blank, can only extend the field before it, so the split is the one fullmatch
    would make), and the (name, value) pairs are then what _HEADER_FIELD.findall gives."""
    pieces = _HEADER_FIELD.split(block)
    if any(pieces[::3]):
        return _HEADER_PARSER.parsestr(block + "\r\n")
    msg = Message()
    msg._headers = list(zip(pieces[1::3], pieces[2::3], strict=True))
    msg._payload = ""  # what the stdlib sets from the (empty) rest after the blank line
    return msg


def _fast_tree(
    text: str, *, crlf_only: bool = False, firsts: dict[int, dict[str, str]] | None = None
) -> Message | None:
    """The compat32 Message tree of well-formed mail, or None to let the stdlib parse it.

    The stdlib feed parser reads the body line by line in Python, matching every line against
    a regular expression per enclosing boundary (compiled anew for each multipart: boundaries
    are unique): ~60% of its time on typical mail. Here the body is split with str.find on
    boundary lines and header blocks with _parse_header_block (the stdlib's HeaderParser for
    anything but plain "Name: value" lines), so headers, payloads, preambles and epilogues
    come out exactly as the stdlib would make them. Only input where that equivalence is
    plain is taken: CRLF line ends only, every header block ended by an empty line and free
    of defects, no message/* or multipart/digest parts, every multipart with a boundary, a
    7bit/8bit/binary encoding, an opening and a closing boundary and no empty parts. Anything
    else (including every kind of damage) returns None.
    tests/capture/pipeline/test_mime_tree.py checks the two trees are equal.

    `crlf_only`: the caller has checked that every CR and LF in text belongs to a CRLF
    (_parse_email searches the bytes for lone ones anyway): the three scans of the whole text
    that check it here are then skipped.
    """
    if not crlf_only:
        crlf = text.count("\r\n")
        if text.count("\n") != crlf or text.count("\r") != crlf:
            return None
    try:
        return _fast_part(text, 0, len(text), top=True, firsts=firsts)
    except _NotSimple:
        return None


def _fast_part(
    text: str,
    start: int,
    end: int,
    *,
    top: bool,
    firsts: dict[int, dict[str, str]] | None = None,
) -> Message:
    """The part in text[start:end] (a whole message when `top`; else the lines between two
    boundary lines of its parent)."""
    if text.startswith("\r\n", start):
        block, body = "", start + 2
    else:
        blank = text.find("\r\n\r\n", start, end)
        if blank < 0:
            raise _NotSimple
        block, body = text[start : blank + 2], blank + 4
    msg = _parse_header_block(block)
    if msg._payload != "" or msg.defects:  # a line that is no header, a misplaced From_ ...
        raise _NotSimple
    first = _first_values(msg)  # the headers are final: the walk in _build reuses it
    if firsts is not None:
        firsts[id(msg)] = first
    ctype = _content_type(msg, first)
    maintype = ctype.split("/")[0]  # get_content_maintype()
    if maintype == "message":
        raise _NotSimple
    if maintype != "multipart":
        # In a multipart, the line end before the next boundary belongs to the boundary.
        # (text.endswith(s, body, end) is text[body:end].endswith(s): one copy, not two)
        if not top and text.endswith("\r\n", body, end):
            end -= 2
        msg._payload = text[body:end]
        return msg
    boundary = _boundary(msg, first)
    cte = _get(msg, first, "content-transfer-encoding")
    if (
        boundary is None
        or ctype == "multipart/digest"
        or ("8bit" if cte is None else str(cte)).lower() not in ("7bit", "8bit", "binary")
    ):
        raise _NotSimple
    marks = _boundary_lines(text, "--" + boundary, body, end)
    if len(marks) < 2 or marks[0][2] or not marks[-1][2]:
        raise _NotSimple  # no opening or no closing boundary
    first = marks[0][0]
    if first > body:
        msg.preamble = text[body : first - 2]
    msg._payload = None
    for (_, opened, _), (closed, _, _) in pairwise(marks):
        if closed == opened:
            raise _NotSimple  # two boundary lines in a row (the stdlib skips both)
        msg.attach(_fast_part(text, opened, closed, top=False, firsts=firsts))
    epilogue: str | None = text[marks[-1][1] : end]
    if not top:
        if epilogue == "":
            epilogue = None
        elif epilogue.endswith("\r\n"):
            epilogue = epilogue[:-2]
    msg.epilogue = epilogue
    return msg


def _boundary_lines(text: str, sep: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """(line start, line end, closing?) of the boundary lines in text[start:end], up to and
    including the first closing one: the lines the stdlib matches with
    ``--boundary(--)?[ \\t]*(\\r\\n)?$``."""
    marks: list[tuple[int, int, bool]] = []
    pos = start
    while True:
        pos = text.find(sep, pos, end)
        if pos < 0:
            return marks
        if pos != start and text[pos - 2 : pos] != "\r\n":
            pos += 1
            continue
        after = pos + len(sep)
        closing = text.startswith("--", after)
        line_end = _line_end(text, after + 2, end) if closing else None
        if line_end is None:
            closing = False
            line_end = _line_end(text, after, end)
        if line_end is None:
            pos += 1
            continue
        marks.append((pos, line_end, closing))
        if closing:
            return marks
        pos = line_end


def _line_end(text: str, pos: int, end: int) -> int | None:
    """Where the line ends if only blanks are left on it from pos, else None."""
    while pos < end and text[pos] in " \t":
        pos += 1
    if pos == len(text):
        return pos
    if text.startswith("\r\n", pos) and pos + 2 <= end:
        return pos + 2
    return None
