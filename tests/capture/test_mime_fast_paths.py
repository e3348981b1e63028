"""The fast paths of capture.mime give exactly what the stdlib code they stand in for gives,
or step aside: parameters (get_param, get_filename, get_content_charset, get_boundary),
header blocks (HeaderParser), address-list splitting and payload decoding, each checked
on thousands of random values made of the characters that matter to the parsers."""

from __future__ import annotations

import base64
import dataclasses
import quopri
import random
import re
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import parseaddr, parsedate_to_datetime

import pytest

from capture.mime.addresses import (
    ANGLE_ADDR,
    parse_address_list,
    split_address_list_slow,
    split_plain_address_list,
    unquote_name,
)
from capture.mime.bodies import a2b_qp, content_charset, decoded_payload, disposition, filename
from capture.mime.headers import (
    FOLD,
    boundary,
    content_type,
    decode_header_value,
    decoded_headers,
    first_values,
    fix_surrogates,
    fold_whitespace,
    get_header,
    plain_params,
    unfold,
)
from capture.mime.ids import parse_date, plain_date
from capture.mime.tree import HEADER_BLOCK, LONE_CR, LONE_LF, parse_header_block
from capture.mime.types import (
    Address,
    AttachmentPart,
    ParsedEmail,
    new_address,
    new_attachment,
    new_parsed_email,
)
from crm.addresses import InvalidAddress, normalize_address

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
    """The value capture.mime.bodies.filename post-processes, as the stdlib computes it."""
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
        ct = plain_params(part, "content-type")
        cd = plain_params(part, "content-disposition")
        for header, params in (("content-type", ct), ("content-disposition", cd)):
            if params is None:
                continue
            plain += 1
            names = set(params) | set(PARAM_NAMES) | {"text/plain", "attachment"}
            for name in names:
                assert params.get(name) == part.get_param(name, header=header), (headers, name)
        assert boundary(part) == part.get_boundary()
        assert content_charset(part, ct) == part.get_content_charset()
        # filename's raw value: compare the finished names (the post-processing is shared)
        expected = stdlib_filename(part)
        if expected[0] == "ok":
            reference = filename(part, None, None)
            assert filename(part, ct, cd) == reference, headers
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
        plain += bool(HEADER_BLOCK.fullmatch(block))
        fast = parse_header_block(block)
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
        chunks = split_plain_address_list(value)
        if chunks is not None:
            taken += 1
            assert chunks == split_address_list_slow(value), value
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
        assert decoded_payload(part) == part.get_payload(decode=True)


def test_unfold_matches_fold_regex():
    rng = random.Random(5)
    for _ in range(5000):
        value = "".join(rng.choice(["\r", "\n", "\r\n", " ", "\t", "a"]) for _ in range(8))
        assert unfold(value) == FOLD.sub("", value), repr(value)


def test_lone_cr_and_lf_searches_match_the_counts():
    rng = random.Random(3)
    for _ in range(5000):
        data = b"".join(
            rng.choice([b"\r\n", b"\r", b"\n", b"a", b"\r\r\n", b"\n\r"]) for _ in range(6)
        )
        crlf = data.count(b"\r\n")
        assert (LONE_LF.search(data) is None) == (data.count(b"\n") == crlf), data
        assert (LONE_CR.search(data) is None) == (data.count(b"\r") == crlf), data


# --------------------------------------------------------------------------- second round


def test_base64_fast_path_matches_get_payload_and_its_defects():
    """decoded_payload decodes base64 with a2b_base64(strict_mode=True) after deleting the
    line breaks; the stdlib must give the same bytes and record no defect then, and every
    damaged payload (padding, junk, "=" inside, lone CR/LF) must come out as it does."""
    rng = random.Random(64)
    fast = 0
    for _ in range(4000):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
        text = base64.b64encode(raw).decode("ascii")
        width = rng.choice([4, 8, 60, 76, 1000])
        lines = [text[i : i + width] for i in range(0, len(text), width)] or [""]
        text = rng.choice(["\r\n", "\n", "\r", "\r\n"]).join(lines)
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            i = rng.randint(0, len(text))
            junk = rng.choice(["=", "==", " ", "\t", "!", "A", "\r", "\n", "-", "\x0b", "\x1c"])
            text = text[:i] + junk + text[i:]
        if rng.random() < 0.1:
            text = text.rstrip("=")
        for cte in ("base64", "BASE64", " base64"):
            part = message_with([("Content-Transfer-Encoding", cte)])
            part._payload = text
            reference = message_with([("Content-Transfer-Encoding", cte)])
            reference._payload = text
            expected = reference.get_payload(decode=True)
            assert decoded_payload(part) == expected, text
            assert decoded_payload(part, first_values(part)) == expected, text
            assert [type(d) for d in part.defects] == [type(d) for d in reference.defects] * 2
            fast += not reference.defects
    assert fast > 2000


def test_quoted_printable_is_a2b_qp():
    rng = random.Random(16)
    alphabet = ["a", "=", "=3D", "=\r\n", "=\n", "=\r", "\r\n", " ", "\t", "=E9", "=e", "_", "=0D"]
    for _ in range(5000):
        data = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))).encode()
        assert a2b_qp(data) == quopri.decodestring(data)


def random_headers(rng: random.Random) -> list[tuple[str, object]]:
    headers: list[tuple[str, object]] = []
    for _ in range(rng.randint(0, 5)):
        name = rng.choice(
            ["Content-Type", "content-type", "CONTENT-TYPE", "Content-Disposition",
             "Content-Transfer-Encoding", "Content-ID", "X-A", "content-id"]
        )  # fmt: skip
        value = rng.choice(
            ["text/plain", "TEXT/HTML; charset=x", " multipart/mixed ; boundary=b", "text",
             "a/b/c", "", " ", "image/png;", "\udce9/x", "x/\udce9", "base64", "<id@x>",
             "t/p\r\n\tx", Header("h/x", "utf-8"), "attachment; filename=a"]
        )  # fmt: skip
        headers.append((name, value))
    return headers


def test_header_lookups_match_message_get():
    rng = random.Random(8)
    for _ in range(6000):
        part = message_with(random_headers(rng))
        if rng.random() < 0.3:
            part.set_default_type("message/rfc822")
        first = first_values(part)
        for name in ("content-type", "content-disposition", "content-id", "x-a", "nope",
                     "content-transfer-encoding"):  # fmt: skip
            fast, slow = get_header(part, first, name), part.get(name)
            assert type(fast) is type(slow) and str(fast) == str(slow), (part._headers, name)
        try:
            expected = part.get_content_type()
        except Exception as e:  # compared below
            with pytest.raises(type(e)):
                content_type(part, first)
        else:
            assert content_type(part, first) == expected, part._headers
        for header in ("content-type", "content-disposition"):
            assert plain_params(part, header, first) == plain_params(part, header)
        assert disposition(part, first) == disposition(part)
        assert boundary(part, first) == part.get_boundary()


def reference_parse_date(value, received_at):
    """capture.mime.ids.parse_date before the plain_date fast path."""
    if value is None or not value.strip():
        return received_at, "missing"
    try:
        parsed = parsedate_to_datetime(fix_surrogates(unfold(value)).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return received_at, "invalid"
    if parsed is None:
        return received_at, "invalid"
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    try:
        absurd = parsed < datetime(1990, 1, 1, tzinfo=UTC) or parsed > received_at + timedelta(
            days=1
        )
    except OverflowError:
        absurd = True
    if absurd:
        return received_at, "absurd"
    return parsed, ""


def random_date(rng: random.Random) -> str:
    if rng.random() < 0.5:  # the usual shape, with edge values in its fields
        return (
            rng.choice(["Mon, ", "Sat, ", ""])
            + f"{rng.choice(['1', '09', '28', '29', '31', '0', '32'])} {rng.choice(['Feb', 'Mar'])}"
            + f" {rng.choice(['2025', '2024', '2100', '1989', '2026', '0999'])}"
            + f" {rng.choice(['00', '23', '24'])}:{rng.choice(['00', '59', '60'])}"
            + f":{rng.choice(['00', '59', '60'])}"
            + f" {rng.choice(['+0000', '-0000', '-0500', '+0530', '+2359', '+2400', '+0099'])}"
            + rng.choice(["", "", " (UTC)", " (a b)"])
        )
    day = rng.choice(["Mon, ", "Sun, ", "mon, ", "Xyz, ", "Mon,", "", "Tue "])
    dd = rng.choice(["1", "01", "10", "31", "0", "32", "29", "30", "001", "٣"])
    mon = rng.choice(["Mar", "Feb", "Dec", "mar", "MAR", "Foo", "March"])
    yy = rng.choice(["2025", "1999", "1989", "0999", "0050", "25", "99", "9999", "2026", "2100"])
    hh = rng.choice(["00", "13", "23", "24", "7", "99"])
    mm = rng.choice(["00", "53", "59", "60"])
    ss = rng.choice([":00", ":59", ":60", ":61", ""])
    tz = rng.choice(["+0000", "-0000", "+0100", "-0500", "+0530", "+2359", "+2400", "-2400",
                     "+0099", "+9999", "GMT", "UT", "EST", "+000", "", "Z"])  # fmt: skip
    tail = rng.choice(["", "", " (UTC)", " (CET)", "(UTC)", " (a b)", " x", "  "])
    sep = rng.choice([" ", " ", " ", "  ", "\t", "\r\n "])
    text = sep.join([day + dd, mon, yy, f"{hh}:{mm}{ss}", tz]) + tail
    return rng.choice(["", " ", "\t"]) + text + rng.choice(["", " ", "\r\n"])


def test_plain_date_matches_parsedate_to_datetime():
    rng = random.Random(1990)
    received = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    plain = 0
    for _ in range(20000):
        value = random_date(rng)
        plain += plain_date(value.strip()) is not None
        got, expected = parse_date(value, received), reference_parse_date(value, received)
        assert got == expected, value
        assert repr(got[0].tzinfo) == repr(expected[0].tzinfo), value
    assert plain > 500


def reference_parse_address_list(value: str) -> tuple[Address, ...]:
    """parse_address_list without the fast paths: the character walk, unquote_name,
    decode_header_value and normalize_address for every address, the dataclass __init__."""
    value = fix_surrogates(unfold(value))
    chunks = [(c.strip(), sep) for c, sep in split_address_list_slow(value) if c.strip()]
    merged: list[str] = []
    i = 0
    while i < len(chunks):
        chunk, sep = chunks[i]
        if (
            sep == ","
            and "@" not in chunk
            and "<" not in chunk
            and i + 1 < len(chunks)
            and chunks[i + 1][0].find("<") > 0
            and "@" not in chunks[i + 1][0].split("<", 1)[0]
        ):
            merged.append(f"{chunk}, {chunks[i + 1][0]}")
            i += 2
            continue
        merged.append(chunk)
        i += 1
    out = []
    for raw in merged:
        match = ANGLE_ADDR.match(raw)
        if match:
            name, addr = unquote_name(match.group("name")), match.group("addr")
        else:
            name, addr = parseaddr(raw)
            if not addr and "<" not in raw:
                addr = raw
            if " " in addr.strip():
                tokens = addr.split()
                at = [t for t in tokens if "@" in t]
                if len(at) == 1 and at[0] == tokens[-1]:
                    name, addr = " ".join(tokens[:-1]), at[0]
        name = decode_header_value(name).strip().strip('"').strip()
        try:
            out.append(Address(address=normalize_address(addr), name=name, raw=raw, valid=True))
        except InvalidAddress:
            out.append(Address(address="", name=name, raw=raw, valid=False))
    return tuple(out)


def test_address_fast_paths_match_the_slow_path():
    rng = random.Random(4527)
    single = 0
    alphabet = ["Dana Dubois", " ", "<", ">", "dana@mailwarden-demo.com", "a@B.example.", ",",
                '"', "=?utf-8?q?D=C3=A9?=", "é", "\udce9", "(c)", ";", ":", "\\", "x@[1.2.3.4]",
                "\r\n ", "\n", "@", "b@xn--mnchen-3ya.de", "c@münchen.de", "\t", "a b@c"]  # fmt: skip
    for _ in range(20000):
        # real text or surrogate-escaped bytes, as the parser leaves them, never both
        letters = [c for c in alphabet if c != rng.choice(["é", "c@münchen.de", "\udce9"])]
        if "\udce9" in letters:
            letters = [c for c in letters if c.isascii() or c == "\udce9"]
        value = "".join(rng.choice(letters) for _ in range(rng.randint(0, 7)))
        single += "," not in value and split_plain_address_list(value) is not None
        parsed = parse_address_list(value)
        assert parsed == reference_parse_address_list(value), value
        assert [vars(a) for a in parsed] == [vars(a) for a in reference_parse_address_list(value)]
    assert single > 3000  # the one-piece split is taken often


def test_whitespace_folds_match_the_regex():
    rng = random.Random(12)
    spaces = [c for c in map(chr, range(0x3001)) if c.isspace()] + ["\u200b", "\ufeff"]
    ws = re.compile(r"\s+")
    for _ in range(5000):
        value = "".join(rng.choice([*spaces, "a", "<", "@", "é"]) for _ in range(8))
        assert fold_whitespace(value) == ws.sub(" ", value).strip(), repr(value)
        assert "".join(value.split()) == ws.sub("", value).strip(), repr(value)


def test_decoded_headers_match_decode_header_value():
    rng = random.Random(21)
    alphabet = ["a", " ", "=?", "=?utf-8?b?w6k=?=", "\r\n ", "\n", "\r", "é", "\udce9", "?="]
    for _ in range(5000):
        odd = rng.choice(["é", "\udce9"])  # real text or escaped bytes, never both
        letters = [c for c in alphabet if c not in ("é", "\udce9")] + [odd]
        raw = [
            (
                "".join(rng.choice(["X", odd]) for _ in range(2)),
                "".join(rng.choice(letters) for _ in range(rng.randint(0, 6))),
            )
            for _ in range(3)
        ]
        expected = tuple((fix_surrogates(n), decode_header_value(v)) for n, v in raw)
        assert decoded_headers(raw) == expected, raw


@pytest.mark.parametrize("cls", [Address, AttachmentPart, ParsedEmail])
def test_makers_build_what_the_dataclass_init_builds(cls):
    make = {Address: new_address, AttachmentPart: new_attachment}.get(cls, new_parsed_email)
    values = {f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(cls))}
    made, reference = make(**values), cls(**values)
    assert type(made) is cls and made == reference and hash(made) == hash(reference)
    assert list(vars(made).items()) == list(vars(reference).items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        make(**dict(list(values.items())[1:]))  # a field missing
    with pytest.raises(TypeError):
        make(**values, extra=1)
