"""The VEVENTs of an iCalendar (RFC 5545) text -> CalendarEvent objects."""

from __future__ import annotations

import re
import zoneinfo
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from capture.mime.addresses import make_address
from capture.mime.types import Address, CalendarEvent
from capture.textsafe import storable_count, storable_moment

__all__ = ["parse_calendar"]

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
    return make_address(value.strip(), params.get("CN", ""), addr)


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
