"""Message-IDs (normalised, or synthesised for mail without one), subjects for threading,
and Date headers."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from capture.mime.headers import fix_surrogates, fold_whitespace, unfold

__all__ = [
    "SYNTHETIC_ID_DOMAIN",
    "aware",
    "normalize_message_id",
    "normalize_subject",
    "parse_date",
    "parse_references",
    "plain_date",
    "synthesise_message_id",
]

SYNTHETIC_ID_DOMAIN = "mailwarden.invalid"

_MSGID_BRACKETED = re.compile(r"<([^<>]*)>")


def _clean_id(value: str) -> str:
    value = "".join(value.split())  # re.sub(r"\s+", "", value).strip(), see fold_whitespace
    local, at, domain = value.partition("@")
    if not at or not local or not domain or "@" in domain or len(value) > 998:
        return ""
    return value


def normalize_message_id(value: str) -> str:
    """Return the inner text of a Message-ID ("" if nothing usable: it must be left@right)."""
    if not value:
        return ""
    value = fix_surrogates(value)
    match = _MSGID_BRACKETED.search(value)
    if match:
        return _clean_id(match.group(1))
    return _clean_id(value.strip())


def parse_references(value: str) -> tuple[str, ...]:
    """The usable Message-IDs of an In-Reply-To or References value, in order, once each."""
    if not value:
        return ()
    value = fix_surrogates(value)
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
    text = fold_whitespace(subject or "")
    while True:
        stripped = _SUBJECT_PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return text.lower().strip()


_EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)


def aware(value: datetime) -> datetime:
    """`value`, read as UTC when it is naive."""
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


def plain_date(text: str) -> datetime | None:
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


def parse_date(value: str | None, received_at: datetime) -> tuple[datetime, str]:
    """(the Date header's time, "") or (received_at, "missing" | "invalid" | "absurd")."""
    if value is None or not value.strip():
        return received_at, "missing"
    try:
        text = fix_surrogates(unfold(value)).strip()
        parsed = plain_date(text) or parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return received_at, "invalid"
    if parsed is None:
        return received_at, "invalid"
    parsed = aware(parsed)
    try:
        absurd = parsed < _EARLIEST_DATE or parsed > received_at + timedelta(days=1)
    except OverflowError:
        absurd = True
    if absurd:
        return received_at, "absurd"
    return parsed, ""


def _content_hash(from_: str, to: str, cc: str, date_: str, subject: str, body: str) -> str:
    def norm(text: str) -> str:
        return fold_whitespace(text)

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
