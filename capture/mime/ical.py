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


# The properties recurrence expansion needs (CalendarEvent.timing keeps only these).
_TIMING = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "STATUS",
        "SEQUENCE",
        "DTSTAMP",
    }
)
_STATUSES = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})
_MAX_DATES = 1000  # RDATE / EXDATE values kept per event


def parse_calendar(text: str, defects: list[str], max_events: int = 200) -> list[CalendarEvent]:
    """Read the VEVENTs of an iCalendar (RFC 5545) text; tolerant of junk, never raises."""
    lines: list[str] = []
    for raw_line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw_line[:1] in (" ", "\t") and lines:
            lines[-1] += raw_line[1:]  # RFC 5545 3.1 unfolding
        elif raw_line:
            lines.append(raw_line)
    found: list[tuple[dict[str, list[tuple[dict[str, str], str]]], list[str]]] = []
    method = ""
    current: dict[str, list[tuple[dict[str, str], str]]] | None = None
    timing: list[str] = []
    nested = 0  # VALARM etc. inside a VEVENT
    zones: dict[str, list[str]] = {}  # TZID -> the lines of its VTIMEZONE
    zone: list[str] | None = None
    zone_depth = 0
    for line in lines:
        name, params, value = _split_ical_line(line)
        if zone is not None:  # inside a VTIMEZONE: keep its lines as they are
            zone.append(line)
            if name == "BEGIN":
                zone_depth += 1
            elif name == "END" and zone_depth:
                zone_depth -= 1
            elif name == "END":
                tzid = next(
                    (_split_ical_line(z)[2] for z in zone if z.upper().startswith("TZID")), ""
                )
                if tzid.strip() and len(zones) < 20:
                    zones[tzid.strip()] = zone
                zone = None
            continue
        if name == "BEGIN":
            kind = value.strip().upper()
            if kind == "VEVENT" and current is None:
                current, timing = {}, []
            elif current is not None:
                nested += 1
            elif kind == "VTIMEZONE":
                zone, zone_depth = [line], 0
            continue
        if name == "END":
            if current is not None and nested:
                nested -= 1
            elif current is not None and value.strip().upper() == "VEVENT":
                if len(found) >= max_events:
                    defects.append("calendar_too_many_events")
                    break
                found.append((current, timing))
                current = None
            continue
        if current is None:
            if name == "METHOD":
                method = value.strip().upper()
            continue
        if not nested:
            current.setdefault(name, []).append((params, value))
            if name in _TIMING:
                timing.append(line)
    return [_build_event(props, method, defects, _timing_text(t, zones)) for props, t in found]


def _timing_text(timing: list[str], zones: dict[str, list[str]]) -> str:
    """A VCALENDAR of one VEVENT's timing lines and the VTIMEZONEs they name."""
    named = {
        params["TZID"].strip()
        for params in (_split_ical_line(line)[1] for line in timing)
        if params.get("TZID")
    }
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Mailwarden//meetings//EN"]
    for tzid in sorted(named):
        out.extend(zones.get(tzid, ()))
    out += ["BEGIN:VEVENT", *timing, "END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(out)


def _ical_dates(
    values: list[tuple[dict[str, str], str]], defects: list[str]
) -> tuple[datetime, ...]:
    out: list[datetime] = []
    for params, value in values:
        if params.get("VALUE", "").upper() == "PERIOD":
            defects.append("calendar_rdate_period")
            continue
        for item in value.split(","):
            if item.strip() and len(out) < _MAX_DATES:
                moment = storable_moment(_ical_datetime(item, params, defects))
                if moment is not None:
                    out.append(moment)
    return tuple(out)


def _build_event(
    props: dict[str, list[tuple[dict[str, str], str]]],
    method: str,
    defects: list[str],
    timing: str = "",
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
    recurrence_params, recurrence_value = first("RECURRENCE-ID")
    stamp_params, stamp_value = first("DTSTAMP")
    status = first("STATUS")[1].strip().upper()
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
        recurrence_id=storable_moment(
            _ical_datetime(recurrence_value, recurrence_params, defects)
            if recurrence_value.strip()
            else None
        ),
        status=status if status in _STATUSES else "",
        dtstamp=storable_moment(
            _ical_datetime(stamp_value, stamp_params, defects) if stamp_value.strip() else None
        ),
        timezone=start_params.get("TZID", "").strip()[:64],
        rdate=_ical_dates(props.get("RDATE", []), defects),
        exdate=_ical_dates(props.get("EXDATE", []), defects),
        timing=timing,
    )
