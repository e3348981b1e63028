"""capture.mime.tree.fast_tree builds exactly the Message tree the stdlib compat32 parser builds,
or declines (None) and leaves the input to the stdlib: fixtures, generated mail, and mail
damaged on purpose (stray and missing boundaries, blank and folded lines, odd headers)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from pathlib import Path

import pytest

from capture.demo import generate_demo_messages
from capture.mime.tree import LONE_CR, LONE_LF, fast_tree, message_tree

FIXTURES = sorted((Path(__file__).resolve().parents[2] / "fixtures").rglob("*.eml"))


def crlf(data: bytes) -> str:
    return re.sub(rb"(?<!\r)\n", b"\r\n", data).decode("ascii", "surrogateescape")


def differences(fast: Message, slow: Message, path: str = "root") -> list[str]:
    out = []
    for attr in ("_headers", "preamble", "epilogue", "_unixfrom", "_default_type", "_charset"):
        if getattr(fast, attr) != getattr(slow, attr):
            out.append(f"{path}.{attr}")
    if [type(d) for d in fast.defects] != [type(d) for d in slow.defects]:
        out.append(f"{path}.defects")
    if set(vars(fast)) != set(vars(slow)):
        out.append(f"{path} attributes")
    if isinstance(slow._payload, list) and isinstance(fast._payload, list):
        if len(fast._payload) != len(slow._payload):
            out.append(f"{path} part count")
        for i, (f, s) in enumerate(zip(fast._payload, slow._payload, strict=False)):
            out += differences(f, s, f"{path}[{i}]")
    elif fast._payload != slow._payload:
        out.append(f"{path}._payload")
    return out


def assert_same_or_declined(text: str) -> bool:
    fast = fast_tree(text)
    if fast is None:
        return False
    assert differences(fast, Parser(policy=compat32).parsestr(text)) == []
    return True


def demo_mail(n: int, seed: int, size=(2_000, 30_000)):
    return generate_demo_messages(
        n=n,
        seed=seed,
        internal=[("Alice Archer", "alice@mailwarden-demo.com")],
        customers=[("Tom Buyer", "tom.buyer@globex.co.uk"), ("Eve Ng", "eve@initech.com")],
        start=datetime(2025, 3, 3, 8, 0, tzinfo=UTC),
        size_range=size,
    )


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixtures(path):
    assert_same_or_declined(crlf(path.read_bytes()))


def test_generated_mail_takes_the_fast_path_and_matches():
    taken = [assert_same_or_declined(crlf(m.data)) for m in demo_mail(60, 11)]
    assert all(taken)


def test_damaged_mail_matches_or_is_declined():
    rng = random.Random(5)
    base = [crlf(m.data) for m in demo_mail(40, 12, size=(1_000, 4_000))]
    taken = 0
    for _ in range(15):
        for text in base:
            lines = text.split("\r\n")
            bounds = re.findall(r'boundary="([^"]+)"', text)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(lines) or 1)
                op = rng.randrange(8)
                if op == 0 and lines:
                    del lines[i]
                elif op == 1 and bounds:
                    tail = rng.choice(["", "--", " ", "\t", "x", "--x", "-- "])
                    lines.insert(i, "--" + rng.choice(bounds) + tail)
                elif op == 2 and lines:
                    lines[i] += rng.choice([" ", "\t"])
                elif op == 3:
                    lines.insert(i, "")
                elif op == 4:
                    lines = lines[: i + 1]
                elif op == 5 and lines:
                    lines[i] = " " + lines[i]
                elif op == 6:
                    lines.insert(i, rng.choice(["From x", ":bad", "X-A: b", "no colon"]))
                else:
                    ctype = rng.choice(["message/rfc822", "multipart/digest", "text/plain"])
                    lines.insert(i, f"Content-Type: {ctype}")
            taken += assert_same_or_declined("\r\n".join(lines) + rng.choice(["", "\r\n"]))
    assert taken > 100  # most damage leaves well-formed parts: the comparison has teeth


@pytest.mark.parametrize(
    "text",
    [
        "Subject: x\nbare LF\n",  # not CRLF
        "Subject: x\r\n\r\nbody\rwith a bare CR\r\n",
        "Subject: x\r\nno body separator",
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\nno opening boundary\r\n',
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\npart\r\n',  # no close
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n--b\r\n\r\np\r\n--b--\r\n',
        "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\npart\r\n--b--\r\n",  # no boundary
        "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n",
        " continuation first\r\nSubject: x\r\n\r\nbody\r\n",
    ],
)
def test_declines_what_it_cannot_vouch_for(text):
    assert fast_tree(text) is None
    assert differences(message_tree(text.encode()), Parser(policy=compat32).parsestr(text)) == []


def test_preamble_epilogue_and_nested_multiparts():
    text = (
        'Content-Type: multipart/mixed; boundary="out"\r\n\r\n'
        "preamble line\r\n\r\n"
        "--out\r\n"
        'Content-Type: multipart/alternative; boundary="in"\r\n\r\n'
        "--in  \r\nContent-Type: text/plain\r\n\r\nplain\r\n\r\n"
        "--in\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
        "--in--\r\ninner epilogue\r\n"
        "--out\r\n\r\nno headers\r\n"
        "--out--\t\r\n\r\nouter epilogue\r\n"
    )
    tree = fast_tree(text)
    assert tree is not None
    assert differences(tree, Parser(policy=compat32).parsestr(text)) == []
    assert tree.preamble == "preamble line\r\n"
    assert tree.get_payload(0).epilogue == "inner epilogue"
    assert tree.get_payload(1).get_payload() == "no headers"


def test_a_caller_checked_crlf_gives_the_same_answer():
    """_parse_email searches the bytes for lone LFs (made CRLFs) and lone CRs (left to the
    stdlib) and tells fast_tree when there are none: its searches agree with the counts
    fast_tree makes on its own, and with the hint fast_tree takes or declines exactly what
    it does without, bare CRs included."""
    rng = random.Random(7)
    texts = [crlf(m.data) for m in demo_mail(20, 13, size=(1_000, 6_000))]
    texts += [crlf(p.read_bytes()) for p in FIXTURES]
    for text in list(texts):
        pos = rng.randrange(len(text))
        texts.append(text[:pos] + "\r" + text[pos:])  # a bare CR (or a CRCRLF)
    declined = 0
    for text in texts:
        data = text.encode("ascii", "surrogateescape")
        assert text.count("\n") == text.count("\r\n")
        assert LONE_LF.search(data) is None
        assert LONE_LF.search(b"\n" + data) is not None
        crlf_only = LONE_CR.search(data) is None
        assert crlf_only == (text.count("\r") == text.count("\r\n"))
        own = fast_tree(text)
        if not crlf_only:
            assert own is None  # what _parse_email leaves to the stdlib
            declined += 1
            continue
        hinted = fast_tree(text, crlf_only=True)
        assert (own is None) == (hinted is None)
        if own is None:
            declined += 1
        else:
            assert differences(hinted, own) == []
    assert declined >= 20  # the bare CRs are declined either way
