"""Reading the DATA section of an SMTP transaction in blocks instead of lines.

aiosmtpd reads DATA one line at a time (one `readuntil` and a few list operations per line):
for ~90 lines a message that cost the listener more than storing the message
(bench/smtp_accept.py). `read_data` finds the end-of-data line (RFC 5321 4.1.1.4: a line
holding only ".") by searching for ".\r\n" in blocks, and then applies the same rules as
aiosmtpd, so the listener answers exactly as it did:

- a line longer than `line_limit` octets with its CRLF (RFC 5321 4.5.3.1.6) → too long;
- more than `size_limit` octets in all → too much (both are answered after the data is
  drained, RFC 5321 4.2.5; the first to happen wins, as in aiosmtpd, to the precision of one
  block of about 1 KB, in which the size is checked first);
- a leading "." of a line is removed (dot-stuffing, RFC 5321 4.5.2); lines are delimited by
  CRLF only, so a bare LF stays inside its line.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

TERMINATOR = b".\r\n"


class DataState(enum.Enum):
    NOMINAL = "nominal"
    TOO_LONG = "too_long"
    TOO_MUCH = "too_much"


@dataclass(frozen=True)
class DataResult:
    state: DataState
    content: bytes  # un-stuffed message bytes; empty unless NOMINAL


async def read_data(
    reader: asyncio.StreamReader, *, size_limit: int, line_limit: int
) -> DataResult:
    """Read up to and including the end-of-data line; raises IncompleteReadError at EOF."""
    kept = bytearray()
    state = DataState.NOMINAL
    total = 0  # octets of the message, end-of-data line excluded (what aiosmtpd counts)
    line_len = 0  # octets of the current, unfinished line so far (CRLF excluded)
    tail = b"\r\n"  # the last two octets read: the message starts at the start of a line
    while True:
        try:
            block = await reader.readuntil(TERMINATOR)
            found = True
        except asyncio.LimitOverrunError as e:
            # No ".\r\n" within the stream's limit: take what cannot hold its start.
            block = await reader.readexactly(e.consumed)
            found = False
        # ".\r\n" ends DATA only when it starts a line.
        end = found and (tail + block)[-5:-3] == b"\r\n"
        body = block[:-3] if end else block
        total += len(body)
        if state is DataState.NOMINAL and size_limit and total > size_limit:
            state = DataState.TOO_MUCH
            kept.clear()
        if state is DataState.NOMINAL:
            line_len = _scan_lines(body, line_len, tail.endswith(b"\r"), line_limit - 2)
            if line_len < 0:
                state = DataState.TOO_LONG
                kept.clear()
            else:
                kept += body
        tail = (tail + block)[-2:]
        if end:
            break
    if state is not DataState.NOMINAL:
        return DataResult(state, b"")
    # RFC 5321 4.5.2: remove the first "." of every line that starts with one.
    content = bytes(kept).replace(b"\r\n.", b"\r\n")
    if content.startswith(b"."):
        content = content[1:]
    return DataResult(state, content)


def _scan_lines(body: bytes, line_len: int, cr_pending: bool, most: int) -> int:
    """The unfinished line's length after `body`, or -1 as soon as a line is longer than
    `most` octets (CRLF excluded). `cr_pending`: the previous block ended with a CR, so a
    body starting with LF completes that CRLF."""
    if cr_pending and body.startswith(b"\n"):
        if line_len - 1 > most:  # the previous line, without its CR
            return -1
        body, line_len = body[1:], 0
    pieces = body.split(b"\r\n")
    if len(pieces) == 1:
        current = line_len + len(pieces[0])
    elif line_len + len(pieces[0]) > most or max(map(len, pieces[1:-1]), default=0) > most:
        return -1
    else:
        current = len(pieces[-1])
    # An unfinished line may end with the CR of a CRLF that has not arrived yet.
    ends_with_cr = body.endswith(b"\r") if body else cr_pending
    if current - ends_with_cr > most:
        return -1
    return current
