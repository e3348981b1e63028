"""The listener's fast MAIL/RCPT path parser agrees with aiosmtpd's full one."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiosmtpd.smtp import SMTP

from capture.smtp.server import CaptureSMTP

CASES = [
    "<a@b.com>",
    "<a@b.com> SIZE=10",
    "<A.B+c@Ex-a.COM>  BODY=8BITMIME SMTPUTF8",
    "<log+AbC_12-x@capture.localhost> NOTIFY=NEVER",
    "<>",
    "<> SIZE=5",
    "<a..b@c.com>",
    "<.a@c.com>",
    "<a.@c.com>",
    "<a@[1.2.3.4]>",
    '<"x y"@c.com>',
    "<a@b.com>x",
    "<a@b.com> (comment) SIZE=1",
    "<a@b.com> ",
    " <a@b.com>",
    "a@b.com",
    "<@route:a@b.com>",
    "<a@b..com>",
    "<a@-b.com>",
    "<a@b.com.>",
    "<ä@b.com>",
    "<a@bü.com>",
    "<a@b.com\r\n>",
    "<a@b@c.com>",
    "<a b@c.com>",
    "",
]


@pytest.fixture
def sessions():
    loop = asyncio.new_event_loop()
    try:
        ours = CaptureSMTP(object(), registry=set(), loop=loop)
        stock = SMTP(object(), loop=loop)
        yield ours, stock
    finally:
        loop.close()


def outcome(session: SMTP, arg: str):
    try:
        return session._getaddr(arg)
    except Exception as e:  # the stock parser raises IndexError on some garbage: so must we
        return type(e)


def agree(ours: CaptureSMTP, stock: SMTP, arg: str) -> None:
    assert outcome(ours, arg) == outcome(stock, arg), repr(arg)


def test_fast_path_parser_matches_aiosmtpd_on_known_forms(sessions):
    ours, stock = sessions
    for arg in CASES:
        agree(ours, stock, arg)


LOCAL = ["a", "Z9", "log", "+", "-", "_", ".", "..", "é", " ", '"', "(", ")", "!", "#", "=", "~"]
DOMAIN = ["b", "com", "x-y", ".", "-", "[", "]", "1", "ü", "@", ":"]
SUFFIX = ["", " SIZE=1", "  BODY=8BITMIME", " (c)", "x", " ", "\t NOTIFY=NEVER", ">", " \r\n"]


def random_path(rng: random.Random) -> str:
    local = "".join(rng.choice(LOCAL[:4] * 6 + LOCAL) for _ in range(rng.randint(0, 5)))
    domain = "".join(rng.choice(DOMAIN[:4] * 6 + DOMAIN) for _ in range(rng.randint(0, 5)))
    return f"{rng.choice(['<', '<', ' <', ''])}{local}@{domain}>{rng.choice(SUFFIX)}"


def test_fast_path_parser_matches_aiosmtpd_on_random_paths(sessions, monkeypatch):
    ours, stock = sessions
    rng = random.Random(5321)
    fast = 0
    calls = {"n": 0}
    slow = SMTP._getaddr

    def counting(self, arg):
        calls["n"] += 1
        return slow(self, arg)

    for _ in range(20_000):
        arg = random_path(rng)
        agree(ours, stock, arg)
        before = calls["n"]
        monkeypatch.setattr(SMTP, "_getaddr", counting)
        outcome(ours, arg)
        monkeypatch.setattr(SMTP, "_getaddr", slow)
        fast += calls["n"] == before
    # The comparison means something only if the fast path took a good share of the cases.
    assert 500 < fast < 19_000


def test_fast_path_honours_the_local_part_limit(sessions):
    ours, stock = sessions
    ours.local_part_limit = stock.local_part_limit = 4
    for arg in ("<abcd@x.com>", "<abcde@x.com> SIZE=1"):
        agree(ours, stock, arg)
    assert ours._getaddr("<abcde@x.com>") == (None, None)
