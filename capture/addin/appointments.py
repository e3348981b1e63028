"""An Outlook appointment saved from the add-in becomes a message with an iCalendar part.

Office.js gives the pane an appointment's fields, not its iCalendar, so the server writes the
VEVENT (UID, DTSTAMP, DTSTART/DTEND, SUMMARY, LOCATION, ORGANIZER, ATTENDEEs, RRULE, EXDATE)
and a small MIME message around it, and submits that like any captured mail (channel
`addin`). The capture pipeline then does what it does for invitations (capture/meetings.py):
one Meeting per UID, recurrence expanded by recurring-ical-events, shown on the linked
records' timelines.

The message's Message-ID is derived from the UID, the appointment's last-modified time and
its content, so saving an unchanged appointment again is the same message (the pipeline adds
the newly chosen links, never a copy) while a changed one is a new message whose later
DTSTAMP updates the meeting.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, formataddr

import icalendar
from django.utils import timezone

MESSAGE_ID_DOMAIN = "addin.mailwarden.invalid"


@dataclass
class Person:
    address: str
    name: str = ""


@dataclass
class Appointment:
    uid: str
    subject: str
    start: datetime
    end: datetime
    location: str = ""
    organizer: Person | None = None
    attendees: list[Person] = field(default_factory=list)
    rrule: str = ""
    exdates: list[datetime] = field(default_factory=list)
    modified: datetime | None = None
    body: str = ""


class InvalidRecurrence(ValueError):
    pass


def parse_rrule(value: str) -> icalendar.vRecur:
    """An RRULE value ("FREQ=WEEKLY;BYDAY=MO,WE") as icalendar reads it; InvalidRecurrence."""
    text = value.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    try:
        rule = icalendar.vRecur.from_ical(text)
    except (ValueError, TypeError) as e:
        raise InvalidRecurrence(f"Not an RRULE: {e}") from None
    if not rule.get("FREQ"):
        raise InvalidRecurrence("An RRULE needs FREQ.")
    return rule


def _fingerprint(appt: Appointment) -> str:
    content = {
        "uid": appt.uid,
        "modified": appt.modified.isoformat() if appt.modified else "",
        "subject": appt.subject,
        "start": appt.start.isoformat(),
        "end": appt.end.isoformat(),
        "location": appt.location,
        "organizer": appt.organizer.address if appt.organizer else "",
        "attendees": sorted(p.address for p in appt.attendees),
        "rrule": appt.rrule,
        "exdates": sorted(d.isoformat() for d in appt.exdates),
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


def message_id_for(appt: Appointment) -> str:
    return f"<appt.{_fingerprint(appt)}@{MESSAGE_ID_DOMAIN}>"


def calendar_text(appt: Appointment, *, stamp: datetime) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Mailwarden//Outlook add-in//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", appt.uid)
    event.add("dtstamp", stamp)
    event.add("sequence", 0)
    event.add("dtstart", appt.start)
    event.add("dtend", appt.end)
    event.add("summary", appt.subject)
    if appt.location:
        event.add("location", appt.location)
    if appt.organizer:
        organizer = icalendar.vCalAddress(f"mailto:{appt.organizer.address}")
        if appt.organizer.name:
            organizer.params["cn"] = icalendar.vText(appt.organizer.name)
        event.add("organizer", organizer)
    for person in appt.attendees:
        attendee = icalendar.vCalAddress(f"mailto:{person.address}")
        if person.name:
            attendee.params["cn"] = icalendar.vText(person.name)
        event.add("attendee", attendee)
    if appt.rrule:
        event.add("rrule", parse_rrule(appt.rrule))
    for d in appt.exdates:
        event.add("exdate", d)
    cal.add_component(event)
    return cal.to_ical()


def appointment_mime(appt: Appointment, *, sender: Person) -> bytes:
    """The message that carries the appointment (From: the organizer, or the saving user)."""
    stamp = appt.modified or timezone.now()
    msg = MimeMessage()
    who = appt.organizer or sender
    msg["From"] = formataddr((who.name, who.address))
    to = [p for p in appt.attendees if p.address != who.address] or [sender]
    msg["To"] = ", ".join(formataddr((p.name, p.address)) for p in to)
    msg["Subject"] = appt.subject
    msg["Date"] = format_datetime(stamp)
    msg["Message-ID"] = message_id_for(appt)
    msg["X-Mailwarden-Source"] = "outlook-addin-appointment"
    msg.set_content(appt.body or appt.subject or "(appointment)")
    # text/plain + text/calendar as alternatives: how Outlook itself sends an invitation
    msg.add_alternative(
        calendar_text(appt, stamp=stamp).decode(), subtype="calendar", params={"method": "PUBLISH"}
    )
    return msg.as_bytes()
