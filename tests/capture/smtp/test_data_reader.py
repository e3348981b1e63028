"""The listener reads DATA in blocks (capture/smtp/data.py) and must answer exactly as
aiosmtpd's line-by-line reader does: the same replies and the same message bytes, however
the client's bytes are split into TCP segments."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest
from aiosmtpd.controller import Controller

from capture.smtp.data import DataState, read_data
from capture.smtp.screening import TOO_BIG as TOO_BIG_TEXT
from capture.smtp.server import CaptureSMTP

TOO_BIG = TOO_BIG_TEXT.encode() + b"\r\n"

SIZE_LIMIT = 5000


class Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.contents.append(envelope.original_content)
        return "250 OK"


class OursController(Controller):
    def factory(self):
        return CaptureSMTP(self.handler, registry=set(), **self.SMTP_kwargs)


def _line(n: int, char: str = "x") -> bytes:
    return (char * n).encode() + b"\r\n"


# The DATA section as the client sends it, end-of-data line included (or not: the cases
# below that lack it are followed by another message's end so the session can go on).
PAYLOADS = [
    b"Subject: hi\r\n\r\nbody\r\n.\r\n",
    b".\r\n",  # an empty message
    b"one line\r\n.\r\n",
    b"Subject: x\r\n\r\nA sentence ends here.\r\nAnd here.\r\n.\r\n",
    b"Subject: x\r\n\r\n..\r\n...leading dots\r\n.x\r\n.\r\n",  # dot-stuffed lines
    b"..starts the message\r\n.\r\n",
    b"bare\nLF\ninside\r\n.\r\nx\r\n",  # ends at the first line that is only "."
    b"a bare CR\r inside\r\n.\r\n",
    b"tricky .\r\n. \r\n.\t\r\n.\r\n",
    _line(999) + b".\r\n",  # the longest line allowed
    _line(1000) + b".\r\n",  # one octet too long: 500
    b"ok\r\n" + _line(3000) + b"more\r\n.\r\n",  # far too long, then the end
    _line(998, ".") + b".\r\n",
    _line(70) * 80 + b".\r\n",  # 5.7 KB: over the size limit, 552
    _line(70) * 70 + b".\r\n",  # 5.0 KB: under it
    _line(70) * 70 + _line(1200) + _line(70) * 20 + b".\r\n",  # too long before too much
    b"x" * 500 + b"\r\n.\r\n",
]


def random_payloads(n: int) -> list[bytes]:
    rng = random.Random(4552)
    pieces = [b"a", b"word ", b".", b"..", b"\r\n", b"\r\n.", b"\n", b"\r", b" ", b"\t", b"x" * 300]
    out = []
    while len(out) < n:
        body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        if rng.random() < 0.1:
            body += b"y" * rng.randint(990, 1010)
        data = body + b"\r\n.\r\n"
        # Only the last line may end DATA: what followed an earlier end would be read as
        # commands, and a server may close on a long one while the client is still sending,
        # which makes the comparison a race (the known payloads cover an early end).
        if data.startswith(b".\r\n") or b"\r\n.\r\n" in data[:-5] + b"\r\n":
            continue
        out.append(data)
    return out


def converse(port: int, payload: bytes, split: str, rng: random.Random) -> list[bytes]:
    """One transaction; returns the server's replies after DATA (354 and what follows)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO test\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        s.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        replies = [f.readline(), f.readline(), f.readline()]
        if split == "whole":
            s.sendall(payload)
        else:
            i = 0
            while i < len(payload):
                step = 1 if split == "bytes" else rng.randint(1, 700)
                s.sendall(payload[i : i + step])
                i += step
                if split == "bytes" and i % 50 == 0:
                    time.sleep(0)  # let the server read partial segments
        # A payload whose end-of-data line comes early leaves the rest as commands: finish
        # the session with a RSET and QUIT so both servers see the same.
        s.sendall(b"RSET\r\nQUIT\r\n")
        replies.append(f.readline())
        return replies


@pytest.fixture
def servers():
    ours, stock = Recorder(), Recorder()
    kwargs = {"hostname": "127.0.0.1", "data_size_limit": SIZE_LIMIT}
    c_ours = OursController(ours, port=_free_port(), **kwargs)
    c_stock = Controller(stock, port=_free_port(), **kwargs)
    c_ours.start()
    c_stock.start()
    try:
        yield (c_ours, ours), (c_stock, stock)
    finally:
        c_ours.stop()
        c_stock.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_same(servers, payloads, splits) -> None:
    (c_ours, ours), (c_stock, stock) = servers
    rng = random.Random(1)
    for payload in payloads:
        for split in splits:
            seed = rng.random()
            got = [
                # the one answer we word differently on purpose (RFC 3463 code)
                b"552 Error: Too much mail data\r\n" if r == TOO_BIG else r
                for r in converse(c_ours.port, payload, split, random.Random(seed))
            ]
            want = converse(c_stock.port, payload, split, random.Random(seed))
            assert got == want, (payload[:80], split)
    assert ours.contents == stock.contents
    return ours.contents


def test_replies_and_bytes_match_aiosmtpd_for_known_payloads(servers):
    contents = check_same(servers, PAYLOADS, ["whole", "random", "bytes"])
    assert contents[0] == b"Subject: hi\r\n\r\nbody\r\n"
    assert b"" in contents  # the empty message
    assert b"Subject: x\r\n\r\n.\r\n..leading dots\r\nx\r\n" in contents


def test_replies_and_bytes_match_aiosmtpd_for_generated_payloads(servers):
    check_same(servers, random_payloads(150), ["whole", "random"])


def test_a_crlf_split_between_two_blocks_ends_the_line():
    """The block reader takes what it can when no end-of-data is in sight; a cut between the
    CR and the LF of a line of the longest allowed length must not join it to the next line."""

    async def run():
        reader = asyncio.StreamReader(limit=CaptureSMTP.line_length_limit)
        first = _line(600) + _line(999) + b"y"  # the first block ends on the CR of line two
        reader.feed_data(first)
        task = asyncio.ensure_future(read_data(reader, size_limit=0, line_limit=1001))
        await asyncio.sleep(0)
        reader.feed_data(b"\r\n.\r\n")
        return await task

    result = asyncio.run(run())
    assert result.state is DataState.NOMINAL
    assert result.content == _line(600) + _line(999) + b"y\r\n"
