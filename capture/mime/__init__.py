"""Raw RFC 5322 bytes -> ParsedEmail (pure Python, no Django).

Speed: the MIME tree is parsed with ``policy.compat32`` (about 6x faster than
``policy.default``) and only the few headers we use are decoded by hand (RFC 2047 words,
address lists, dates). Well-formed mail gets the very tree the stdlib parser would build
from a faster split (:func:`capture.mime.tree.fast_tree`); anything unusual goes to the
stdlib.

The submodules, each importing only those listed before it: ``types`` (results and limits),
``headers``, ``addresses``, ``ids`` (Message-IDs, subjects, dates), ``bodies`` (payloads
and charsets), ``ical``, ``classify``, ``tree`` (the MIME tree) and ``parse``
(:func:`parse_email`, which raises only :class:`capture.errors.InputRejected`).
"""

from __future__ import annotations

from capture.mime.addresses import parse_address_list
from capture.mime.headers import decode_header_value
from capture.mime.ical import parse_calendar
from capture.mime.ids import normalize_message_id, normalize_subject, synthesise_message_id
from capture.mime.parse import parse_email
from capture.mime.types import Address, AttachmentPart, CalendarEvent, ParsedEmail, ParseLimits

__all__ = [
    "Address",
    "AttachmentPart",
    "CalendarEvent",
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
