"""The parser's results and limits: frozen dataclasses, and fast constructors for the hot ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import Any

__all__ = [
    "Address",
    "AttachmentPart",
    "CalendarEvent",
    "ParseLimits",
    "ParsedEmail",
    "new_address",
    "new_attachment",
    "new_parsed_email",
]


@dataclass(frozen=True)
class ParseLimits:
    max_bytes: int = 50 * 1024 * 1024 + 1024 * 1024  # whole message
    max_depth: int = 20  # MIME nesting depth
    max_parts: int = 500
    max_headers: int = 1000  # top-level header count
    max_body_chars: int = 1_000_000  # text/html body kept up to this; longer -> truncated flag
    max_calendar_events: int = 200  # VEVENTs read per message (the rest are ignored + defect)


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
    # RFC 5545 recurrence and state (defaults keep older constructions valid)
    recurrence_id: datetime | None = None  # set on an override of one occurrence
    status: str = ""  # CONFIRMED / TENTATIVE / CANCELLED, "" when absent
    dtstamp: datetime | None = None
    timezone: str = ""  # TZID of DTSTART as written
    rdate: tuple[datetime, ...] = ()
    exdate: tuple[datetime, ...] = ()
    # A VCALENDAR of this VEVENT's timing properties only (UID, DTSTART, DTEND/DURATION,
    # RRULE, RDATE, EXDATE, RECURRENCE-ID, STATUS, SEQUENCE) and the VTIMEZONEs they name:
    # what recurrence expansion needs, and no summary, location, description or attendees.
    timing: str = ""


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


new_address = _maker(Address)
new_attachment = _maker(AttachmentPart)
new_parsed_email = _maker(ParsedEmail)
