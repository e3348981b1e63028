"""Real-shaped calendar mail for the meeting tests: Outlook (Windows zone names with their
VTIMEZONE, METHOD in the part's Content-Type) and Google (IANA TZID with a VTIMEZONE)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

SAM = "sam.seller@mailwarden-demo.com"
TOM = "tom.buyer@globex.co.uk"
JANE = "jane.doe@acme-widgets.com"

OUTLOOK_ZONE = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE"""

GOOGLE_ZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
X-LIC-LOCATION:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

OUTLOOK_UID = "040000008200E00074C5B7101A82E00800000000A0B1C2D3E4F5D901000000000000000010000000"
WIN = "TZID=W. Europe Standard Time"


def vevent(
    *,
    uid: str = OUTLOOK_UID,
    start: str = "20250303T100000",
    end: str = "20250303T110000",
    tz: str = WIN,
    sequence: int = 0,
    dtstamp: str = "20250301T080000Z",
    summary: str = "Weekly widget sync",
    location: str = "Room 4.12; Berlin office",
    rrule: str = "",
    exdate: str = "",
    rdate: str = "",
    recurrence_id: str = "",
    status: str = "CONFIRMED",
    organizer: str = JANE,
    attendees: tuple[str, ...] = (SAM, TOM),
) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}"]
    if recurrence_id:
        lines.append(f"RECURRENCE-ID;{tz}:{recurrence_id}")
    lines += [
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{dtstamp}",
        f'ORGANIZER;CN="Doe, Jane":mailto:{organizer}',
    ]
    lines += [
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}"
        for a in attendees
    ]
    lines += [
        f"SUMMARY;LANGUAGE=en-US:{summary}",
        f"LOCATION:{location.replace(';', chr(92) + ';')}",
        f"DTSTART;{tz}:{start}",
        f"DTEND;{tz}:{end}",
    ]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    if exdate:
        lines.append(f"EXDATE;{tz}:{exdate}")
    if rdate:
        lines.append(f"RDATE;{tz}:{rdate}")
    if status:
        lines.append(f"STATUS:{status}")
    lines += [
        "DESCRIPTION:Agenda:\\n- volumes\\n- prices",
        "BEGIN:VALARM",
        "TRIGGER:-PT15M",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        "END:VALARM",
        "END:VEVENT",
    ]
    return "\n".join(lines)


def calendar(method: str, *events: str, zone: str = OUTLOOK_ZONE) -> str:
    head = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN",
        "VERSION:2.0",
        f"METHOD:{method}",
    ]
    text = "\n".join([*head, zone, *events, "END:VCALENDAR", ""])
    return text.replace("\n", "\r\n")


def invite_mail(
    ics: str,
    *,
    message_id: str,
    method: str = "REQUEST",
    subject: str = "Weekly widget sync",
    date: datetime = datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
    from_: str = f'"Doe, Jane" <{JANE}>',
    to: str = f"Sam Seller <{SAM}>, Tom Buyer <{TOM}>",
) -> bytes:
    """An invite as Outlook sends it: multipart/alternative, the calendar part last."""
    head = [
        f"From: {from_}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="cal-b"',
        "",
        "--cal-b",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Agenda: volumes, prices.",
        "--cal-b",
        f"Content-Type: text/calendar; charset=utf-8; method={method}",
        "Content-Transfer-Encoding: 8bit",
        "",
    ]
    tail = ["--cal-b--", ""]
    return ("\r\n".join(head) + "\r\n" + ics + "\r\n" + "\r\n".join(tail)).encode("utf-8")
