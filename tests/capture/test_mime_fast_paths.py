"""The fast paths of capture.mime give exactly what the stdlib code they stand in for gives,
or step aside: parameters (get_param, get_filename, get_content_charset, get_boundary),
header blocks (HeaderParser), address-list splitting and payload decoding, each checked
on thousands of random values made of the characters that matter to the parsers."""

from __future__ import annotations

import random
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

import pytest

from capture.mime import (
    _FOLD,
    _HEADER_BLOCK,
    _LONE_CR,
    _LONE_LF,
    _boundary,
    _content_charset,
    _decoded_payload,
    _filename,
    _parse_header_block,
    _plain_params,
    _split_address_list_slow,
    _split_plain_address_list,
    _unfold,
)

PARAM_NAMES = ("charset", "name", "filename", "boundary", "report-type", "format", "")


def random_param_value(rng: random.Random) -> str:
    """A Content-Type / Content-Disposition value, mostly well-formed, often not."""
    head = rng.choice(
        [
            "text/plain",
            "TEXT/Html",
            "multipart/mixed",
            "attachment",
            "inline",
            " x/y ",
            "",
            "a",
            "name=x",
            '"t/p"',
            "<a/b>",
        ]
    )
    pieces = [head]
    for _ in range(rng.randint(0, 4)):
        name = rng.choice((*PARAM_NAMES, "NAME", " Charset ", "filename*", "name*0", "x"))
        value = rng.choice(
            [
                "utf-8",
                '"utf-8"',
                '"a b.pdf"',
                "<id@x>",
                '"<q>"',
                '""',
                '"',
                "",
                "=_mw_7.2.0.1",
                '"=_b=="',
                "us-ascii'en'%E2%82%AC",
                '"a;b"',
                '"a\\"b"',
                "=?utf-8?B?w6kudHh0?=",
                "x\x1f",
                "\udce9",  # an 8-bit byte as the parser leaves it (surrogateescape)
                '"x  "',
            ]
        )
        sep = rng.choice(["=", " = ", "", "=="])
        pieces.append(f"{name}{sep}{value}")
    value = rng.choice([";", "; ", " ;", ";\r\n\t", ";;"]).join(pieces)
    if rng.random() < 0.1:
        value += rng.choice([";", " ", "\t", '"', "(c)"])
    return value


def message_with(headers: list[tuple[str, str]]) -> Message:
    msg = Message()
    msg._headers = list(headers)
    msg._payload = ""
    return msg


def stdlib_filename(part: Message) -> object:
    """The value capture.mime._filename post-processes, as the stdlib computes it."""
    try:
        return ("ok", part.get_filename() or part.get_param("name", header="content-type"))
    except Exception:
        return ("error", None)


def test_plain_params_match_get_param():
    rng = random.Random(2026)
    plain = 0
    for _ in range(6000):
        headers = []
        if rng.random() < 0.9:
            headers.append(("Content-Type", random_param_value(rng)))
        if rng.random() < 0.5:
            headers.append(("Content-Disposition", random_param_value(rng)))
        if rng.random() < 0.1:
            headers.append(("content-type", random_param_value(rng)))  # only the first counts
        rng.shuffle(headers)
        part = message_with(headers)
        ct = _plain_params(part, "content-type")
        cd = _plain_params(part, "content-disposition")
        for header, params in (("content-type", ct), ("content-disposition", cd)):
            if params is None:
                continue
            plain += 1
            names = set(params) | set(PARAM_NAMES) | {"text/plain", "attachment"}
            for name in names:
                assert params.get(name) == part.get_param(name, header=header), (headers, name)
        assert _boundary(part) == part.get_boundary()
        assert _content_charset(part, ct) == part.get_content_charset()
        # _filename's raw value: compare the finished names (the post-processing is shared)
        expected = stdlib_filename(part)
        if expected[0] == "ok":
            reference = _filename(part, None, None)
            assert _filename(part, ct, cd) == reference, headers
    assert plain > 3000  # most values take the fast path: the comparison has teeth


def random_header_block(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(0, 6)):
        kind = rng.random()
        if kind < 0.7:
            name = rng.choice(["Subject", "X-A", "Content-Type", "a", "X_Y!~", "From", "to"])
            lines.append(
                name
                + rng.choice([":", ": ", ":\t", "::", " :"])
                + rng.choice(["v", "", " ", "a: b", "\udce9t\udcc3", "x\t", '"q"'])
            )
        elif kind < 0.85:
            lines.append(rng.choice([" ", "\t", "  "]) + rng.choice(["cont", "", ":x"]))
        else:
            lines.append(rng.choice(["From x@y", ":bad", "no colon", "K\x7f: v", "K\udce9: v"]))
    return "".join(line + "\r\n" for line in lines)


def test_header_block_matches_header_parser():
    rng = random.Random(7)
    parser = HeaderParser(policy=compat32)
    plain = 0
    for _ in range(5000):
        block = random_header_block(rng)
        plain += bool(_HEADER_BLOCK.fullmatch(block))
        fast = _parse_header_block(block)
        slow = parser.parsestr(block + "\r\n")
        assert fast._headers == slow._headers, block
        assert fast._payload == slow._payload
        assert fast._unixfrom == slow._unixfrom
        assert [type(d) for d in fast.defects] == [type(d) for d in slow.defects]
        assert vars(fast).keys() == vars(slow).keys()
    assert 1000 < plain < 4500  # both ways are taken often


def test_plain_address_split_matches_the_walk():
    rng = random.Random(11)
    alphabet = ["a@x.com", "Bob", " ", ",", "<", ">", "b@y", '"', "(", ")", ";", ":", "\\", "."]
    taken = 0
    for _ in range(20000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        chunks = _split_plain_address_list(value)
        if chunks is not None:
            taken += 1
            assert chunks == _split_address_list_slow(value), value
    assert taken > 1000


@pytest.mark.parametrize(
    "cte",
    ["", "7bit", "8bit", "binary", "quoted-printable", "Quoted-Printable", "base64", "uue", "x"],
)
def test_decoded_payload_matches_get_payload(cte):
    rng = random.Random(cte)
    alphabet = ["a", "=", "=3D", "=\r\n", "\r\n", " ", "=E9", "=e", "Zm9v", "\udce9", "=="]
    for _ in range(500):
        headers = [("Content-Transfer-Encoding", cte)] if cte else []
        part = message_with(headers)
        part._payload = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert _decoded_payload(part) == part.get_payload(decode=True)


def test_unfold_matches_fold_regex():
    rng = random.Random(5)
    for _ in range(5000):
        value = "".join(rng.choice(["\r", "\n", "\r\n", " ", "\t", "a"]) for _ in range(8))
        assert _unfold(value) == _FOLD.sub("", value), repr(value)


def test_lone_cr_and_lf_searches_match_the_counts():
    rng = random.Random(3)
    for _ in range(5000):
        data = b"".join(
            rng.choice([b"\r\n", b"\r", b"\n", b"a", b"\r\r\n", b"\n\r"]) for _ in range(6)
        )
        crlf = data.count(b"\r\n")
        assert (_LONE_LF.search(data) is None) == (data.count(b"\n") == crlf), data
        assert (_LONE_CR.search(data) is None) == (data.count(b"\r") == crlf), data
