"""Hypothesis strategies that damage the real mail fixtures (tests/fixtures/mail) the ways
hostile or broken mail does: truncation, bit flips, NULs and bare CRs, header floods, deep
nesting, huge encoded words, bad charsets, boundary games, calendar garbage. Each strategy
gives the mutant's bytes; hypothesis shrinks a failing one to a small reproduction."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from hypothesis import strategies as st

from tests.capture.pipeline.helpers import MAIL_DIR

FIXTURES: dict[str, bytes] = {p.name: p.read_bytes() for p in sorted(MAIL_DIR.glob("*.eml"))}
# the 4 MB one last: hypothesis shrinks towards the first, small, fixtures
NAMES = sorted(FIXTURES, key=lambda name: (len(FIXTURES[name]) > 100_000, name))
MULTIPART = [n for n in NAMES if b"boundary=" in FIXTURES[n]]
CALENDAR_FIXTURE = "calendar_invite.eml"

Mutation = Callable[[st.DrawFn, bytes], bytes]

fixtures = st.sampled_from(NAMES).map(FIXTURES.__getitem__)


def _position(draw: st.DrawFn, data: bytes) -> int:
    return draw(st.integers(0, len(data)))


def _header_end(data: bytes) -> int:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return end if end >= 0 else len(data)


# --------------------------------------------------------------------------- bytes


def truncate(draw: st.DrawFn, data: bytes) -> bytes:
    return data[: _position(draw, data)]


def flip_bits(draw: st.DrawFn, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 16))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def insert_control(draw: st.DrawFn, data: bytes) -> bytes:
    """NULs, bare CRs, bare LFs and other control bytes, in the headers or anywhere."""
    where = draw(st.sampled_from(["headers", "anywhere"]))
    limit = _header_end(data) if where == "headers" else len(data)
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, limit))
        out[i:i] = draw(st.sampled_from([b"\x00", b"\r", b"\n", b"\x00\x00\x00", b"\x1b", b"\xff"]))
    return bytes(out)


def splice(draw: st.DrawFn, data: bytes) -> bytes:
    """Delete or repeat a span (a lost or doubled packet)."""
    a = _position(draw, data)
    b = draw(st.integers(a, min(len(data), a + 4096)))
    if draw(st.booleans()):
        return data[:a] + data[b:]
    return data[:b] + data[a:b] * draw(st.integers(1, 20)) + data[b:]


BYTE_MUTATIONS: list[Mutation] = [truncate, flip_bits, insert_control, splice]


# --------------------------------------------------------------------------- structure


def header_flood(draw: st.DrawFn, data: bytes) -> bytes:
    """Many header lines (around the 1000-header limit), or one huge folded header."""
    count = draw(st.sampled_from([50, 999, 1001, 5000]))
    line = draw(
        st.sampled_from(
            [
                b"Received: from x (y [10.0.0.1]) by z; Mon, 10 Mar 2025 13:53:00 +0000\r\n",
                b'To: a@b.example, =?utf-8?q?=00?= <c@d.example>, "x,y" <e@f.example>\r\n',
                b"References: <a@b> <c@d> <e@f>\r\n",
                b"X-Junk: \x00\xff\xfe\r\n",
                b"\t folded continuation with nothing before it\r\n",
                b"Subject: again\r\n",
            ]
        )
    )
    at = draw(st.sampled_from([0, _header_end(data)]))
    if draw(st.booleans()):
        flood = line * count
    else:  # one header folded over `count` lines
        flood = line.rstrip(b"\r\n") + b"\r\n" + b" more\r\n" * count
    if at and data[at - 2 : at] != b"\r\n" and data[at - 1 : at] != b"\n":
        flood = b"\r\n" + flood
    return data[:at] + flood + data[at:]


def deep_nesting(draw: st.DrawFn, data: bytes) -> bytes:
    """Wrap the message in levels of multipart or message/rfc822 (around the depth limit)."""
    levels = draw(st.sampled_from([1, 5, 19, 20, 21, 40, 200]))
    kind = draw(st.sampled_from(["multipart", "rfc822", "unclosed"]))
    body = data
    for level in range(levels):
        if kind == "rfc822":
            head = b"From: a@b.example\r\nContent-Type: message/rfc822\r\n\r\n"
            body = head + body
            continue
        boundary = b"n%d" % level
        close = b"" if kind == "unclosed" else b"\r\n--" + boundary + b"--\r\n"
        body = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--'
            + boundary + b"\r\n" + body + close
        )  # fmt: skip
    return b"From: a@b.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n" + body


def _encoded_word(draw: st.DrawFn, size: int) -> bytes:
    charset = draw(st.sampled_from([b"utf-8", b"utf-7", b"utf-16", b"x-unknown", b"iso-8859-1"]))
    seed = draw(st.binary(min_size=1, max_size=64))
    payload = (seed * (size // len(seed) + 1))[:size]
    if draw(st.booleans()):
        return b"=?" + charset + b"?b?" + base64.b64encode(payload) + b"?="
    quoted = b"".join(b"=%02X" % byte for byte in payload)
    return b"=?" + charset + b"?q?" + quoted + b"?="


def huge_encoded_word(draw: st.DrawFn, data: bytes) -> bytes:
    """A Subject, a display name or a file name made of a very long encoded word."""
    size = draw(st.sampled_from([10, 1000, 100_000, 1_000_000]))
    word = _encoded_word(draw, size)
    target = draw(st.sampled_from(["subject", "from", "filename"]))
    end = _header_end(data)
    if target == "filename":
        header = b'Content-Disposition: attachment; filename="' + word + b'"\r\n'
    elif target == "from":
        header = b"From: " + word + b" <a@b.example>\r\n"
    else:
        header = b"Subject: " + word + b"\r\n"
    head = data[:end]
    head = re.sub(rb"(?im)^" + target.encode() + rb":[^\r\n]*\r?\n", b"", head + b"\r\n")
    return head.rstrip(b"\r\n") + b"\r\n" + header.rstrip(b"\r\n") + data[end:]


BAD_CHARSETS = [
    b"utf-7",
    b"unicode-escape",
    b"raw-unicode-escape",
    b"utf-16",
    b"utf-32-be",
    b"utf-8-sig",
    b"x-unknown",
    b"unknown-8bit",
    b"rot13",
    b"zlib",
    b"base64",
    b"idna",
    b"punycode",
    b"hz",
    b"iso-2022-jp",
    b"cp037",
    b"undefined",
    b"mbcs",
    b"",
    b'"',
    b"\x00",
    b"utf-8\x00",
    b"\xff\xfe",
    b"a" * 300,
]


def bad_charset(draw: st.DrawFn, data: bytes) -> bytes:
    """Every charset label (part parameters and encoded words) replaced by a hostile one."""
    label = draw(st.sampled_from(BAD_CHARSETS))
    data = re.sub(rb'(?i)charset="?[-\w]+"?', b"charset=" + label, data)
    return re.sub(rb"=\?[-\w]+\?", b"=?" + label + b"?", data)


def hostile_text(draw: st.DrawFn, data: bytes) -> bytes:
    """Text that decodes to a NUL or a surrogate, put in a header or the first body."""
    piece = draw(
        st.sampled_from(
            [
                b"=?utf-8?q?a=00b?=",
                b"=?utf-7?q?+2AA-?=",
                b"=?utf-8?b?AA==?=",
                b"=?unicode-escape?q?=5Cud800=5Cx00?=",
                b"\x00",
                b"\xed\xa0\x80",  # a surrogate in (invalid) UTF-8
            ]
        )
    )
    end = _header_end(data)
    if draw(st.booleans()):
        name = draw(st.sampled_from([b"Subject", b"From", b"To", b"Message-ID", b"X-Note"]))
        line = name + b": " + piece + (b" <x@y.example>" if name in (b"From", b"To") else b"")
        return data[:end] + b"\r\n" + line + data[end:]
    body = {b"\x00": b"=00", b"\xed\xa0\x80": b"=ED=A0=80"}.get(piece, piece)
    return data[: end + 4] + body + b"\r\n" + data[end + 4 :]


def boundary_games(draw: st.DrawFn, data: bytes) -> bytes:
    """Boundaries that are empty, shared, prefixes of each other, unclosed or repeated."""
    boundaries = re.findall(rb'boundary="?([^";\r\n]+)"?', data)
    if not boundaries:
        return data
    target = draw(st.sampled_from(boundaries))
    game = draw(st.sampled_from(["rename", "unclose", "repeat", "prefix", "strip"]))
    if game == "rename":
        new = draw(st.sampled_from([b"", b" ", b"\x00", b"--", b'"', b"a" * 2000, boundaries[0]]))
        return data.replace(b'boundary="' + target + b'"', b'boundary="' + new + b'"', 1)
    if game == "unclose":
        return data.replace(b"--" + target + b"--", b"", 1)
    if game == "repeat":
        line = b"--" + target + b"\r\n"
        return data.replace(line, line * draw(st.integers(2, 600)), 1)
    if game == "prefix":  # an inner boundary that starts like the outer one
        return data.replace(target, target[: max(1, len(target) // 2)])
    return data.replace(b"--" + target, b"", draw(st.integers(1, 3)))


# lengths of columns header text ends in (varchar 64, 120, 254, 255, 300, 995) and of a line
LIMITS = [64, 120, 254, 255, 300, 995, 998]


def long_fields(draw: st.DrawFn, data: bytes) -> bytes:
    """A header field whose text is just around or past the length of the column it ends in."""
    n = draw(st.sampled_from(LIMITS)) + draw(st.integers(-1, 2))
    filler = draw(st.sampled_from([b"a", b"\xc3\xa9", b"=?utf-8?q?=C3=A9?= "]))
    header = draw(
        st.sampled_from(
            [
                b"Message-ID: <" + b"i" * (n - 12) + b"@example.com>",
                b"Message-ID: <x@" + b"d" * (n - 2) + b">",
                b"In-Reply-To: <" + b"r" * (n - 12) + b"@example.com>",
                b"References: "
                + b" ".join(b"<%d%s@example.com>" % (i, b"r" * (n - 13)) for i in range(3)),
                b"From: " + filler * n + b" <a@example.com>",
                b"From: a@" + b"d" * (n - 2),
                b"From: " + b"l" * (n - 12) + b"@example.com",
                b"To: " + b", ".join(b"u%d@example.com" % i for i in range(n)),
                b"Subject: " + filler * n,
                b"Content-Type: text/plain; charset=utf-8; name=" + b"f" * (n - 4) + b".txt",
                b"Content-Type: " + b"t" * (n // 2) + b"/" + b"s" * (n - n // 2 - 1),
                b"Content-ID: <" + b"c" * n + b">",
            ]
        )
    )
    name = header.split(b":", 1)[0]
    end = _header_end(data)
    head = re.sub(rb"(?im)^" + re.escape(name) + rb":[^\r\n]*\r?\n", b"", data[:end] + b"\r\n")
    return head.rstrip(b"\r\n") + b"\r\n" + header + data[end:]


STRUCTURE_MUTATIONS: list[Mutation] = [
    header_flood,
    deep_nesting,
    huge_encoded_word,
    boundary_games,
    long_fields,
]
TEXT_MUTATIONS: list[Mutation] = [bad_charset, hostile_text]


# --------------------------------------------------------------------------- calendar

CALENDAR_GARBAGE = [
    b"SEQUENCE:99999999999999999999999",
    b"SEQUENCE:2147483648",
    b"SEQUENCE:\xc2\xb2",  # a superscript two: str.isdigit() says yes, int() says no
    b"SEQUENCE:-1",
    b"DTSTART:00010101T000000",
    b"DTSTART;TZID=Etc/GMT-14:00010101T000000",
    b"DTSTART;TZID=America/Los_Angeles:99991231T235959",
    b"DTEND;TZID=Etc/GMT+12:99991231T235959",
    b"DTSTART:20250230T250000Z",
    b"DTSTART;VALUE=DATE:2025",
    b"DTSTART:garbage",
    b"DURATION:P99999999W",
    b"DURATION:-P99999999DT99999999H",
    b"TZID:../../../etc/passwd",
    b"DTSTART;TZID=\x00:20250310T090000",
    b'DTSTART;TZID="/\xff":20250310T090000',
    b"RRULE:" + b"FREQ=DAILY;" * 200,
    b"SUMMARY:" + b"\\n\\," * 5000,
    b"SUMMARY:\x00\xed\xa0\x80",
    b"ATTENDEE;CN=\x00:mailto:\x00@x",
    b'ORGANIZER;CN="unterminated:mailto:a@b',
    b"BEGIN:VEVENT",
    b"END:VEVENT",
    b"BEGIN:VALARM",
    b"END:VCALENDAR",
    b" folded continuation",
    b"UID:" + b"u" * 5000,
    b"METHOD:" + b"M" * 100,
]


def _calendar_source() -> tuple[bytes, bytes]:
    """calendar_invite.eml's message up to its calendar part's body, and that body (an
    iCalendar text the fixture sends in base64) decoded."""
    data = FIXTURES[CALENDAR_FIXTURE]
    start = data.index(b"Content-Type: text/calendar")
    body_at = re.compile(rb"\r?\n\r?\n").search(data, start).end()  # type: ignore[union-attr]
    end = data.index(b"--cal-b--", body_at)
    return data[:start], base64.b64decode(data[body_at:end])


CALENDAR_HEAD, CALENDAR_TEXT = _calendar_source()


def calendar_garbage(draw: st.DrawFn, text: bytes) -> bytes:
    """iCalendar lines replaced by, or extended with, garbage; or many events."""
    start = text.find(b"BEGIN:VEVENT")
    if start < 0:
        return text
    if draw(st.integers(0, 9)) == 0:  # many events (the limit is 200)
        end = text.find(b"END:VEVENT", start) + len(b"END:VEVENT\r\n")
        event = text[start:end]
        return text[:start] + event * draw(st.sampled_from([199, 201, 1000])) + text[end:]
    lines = text.split(b"\r\n")
    for _ in range(draw(st.integers(1, 6))):
        garbage = draw(st.sampled_from(CALENDAR_GARBAGE))
        i = draw(st.integers(0, max(0, len(lines) - 2)))
        if draw(st.booleans()):
            lines[i] = garbage
        else:
            lines.insert(i, garbage)
    return b"\r\n".join(lines)


@st.composite
def calendar_mutants(draw: st.DrawFn) -> bytes:
    """calendar_invite.eml with garbage in its calendar, sent as 8bit text or in base64."""
    text = CALENDAR_TEXT
    for _ in range(draw(st.integers(1, 2))):
        text = calendar_garbage(draw, text)
    part = b"Content-Type: text/calendar; charset=utf-8; method=REQUEST\r\n"
    if draw(st.booleans()):
        part += b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(text)
    else:
        part += b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text + b"\r\n"
    return CALENDAR_HEAD + part + b"--cal-b--\r\n"


# --------------------------------------------------------------------------- strategies


@st.composite
def mutants(
    draw: st.DrawFn,
    mutations: list[Mutation],
    names: list[str] | None = None,
    max_steps: int = 3,
) -> bytes:
    """A fixture (from `names`, default all) after one to `max_steps` of `mutations`."""
    data = FIXTURES[draw(st.sampled_from(names or NAMES))]
    for mutation in draw(st.lists(st.sampled_from(mutations), min_size=1, max_size=max_steps)):
        data = mutation(draw, data)
    return data


# Text a channel takes from outside: envelope addresses, a source, the add-in's categories
# (st.characters leaves out surrogates: they are added).
hostile_strings = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff", "\udc80"])),
    max_size=40,
)
