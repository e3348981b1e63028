"""Address-list headers (From, To, Cc...) -> Address objects, tolerant of what clients send."""

from __future__ import annotations

import re
from email.utils import parseaddr
from functools import lru_cache

from capture.mime.headers import decode_header_value, fix_surrogates, unfold
from capture.mime.types import Address, new_address
from crm.addresses import InvalidAddress, normalize_address

__all__ = [
    "ANGLE_ADDR",
    "make_address",
    "parse_address_list",
    "split_address_list_slow",
    "split_plain_address_list",
    "unquote_name",
]


def _split_address_list(value: str) -> list[str]:
    """Split an address-list header into per-address raw chunks.

    Understands quoted strings, comments, angle brackets and RFC 5322 groups
    ("Key accounts: a@x, b@y;" and "undisclosed-recipients:;"): the group name is dropped.
    Semicolons outside a group separate too (Outlook's habit).
    """
    if "," not in value and split_plain_address_list(value) is not None:
        # one plain piece (the usual From): the walk below keeps it stripped, if not blank
        value = value.strip()
        return [value] if value else []
    chunks = split_plain_address_list(value)
    if chunks is None:
        chunks = split_address_list_slow(value)
    chunks = [(c.strip(), sep) for c, sep in chunks if c.strip()]
    # "Doe, John <john@x>" written without quotes: glue a bare name to the next chunk
    # (only across a comma: Outlook separates with ";" and prints names without addresses)
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
    return merged


def split_plain_address_list(value: str) -> list[tuple[str, str]] | None:
    """split_address_list_slow for lists without quotes, comments, escapes, groups or ";"
    in which every ","-separated piece has at most one "<...>" (the usual "Name <addr>,
    addr"): the character walk then splits at every "," and nowhere else. None otherwise."""
    if '"' in value or "(" in value or ")" in value or "\\" in value or ":" in value:
        return None
    if ";" in value:
        return None
    pieces = value.split(",")
    for piece in pieces:
        opening = piece.find("<")
        closing = piece.find(">")
        if opening < 0 and closing < 0:
            continue
        if not (0 <= opening < closing) or piece.count("<") != 1 or piece.count(">") != 1:
            return None
    chunks = [(piece, ",") for piece in pieces]
    chunks[-1] = (pieces[-1], "")
    return chunks


def split_address_list_slow(value: str) -> list[tuple[str, str]]:
    """The character walk: (text, the separator that ended it) per chunk."""
    chunks: list[tuple[str, str]] = []
    buf: list[str] = []
    quote = False
    escape = False
    angle = 0
    paren = 0
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if ch == "\\" and (quote or paren):
            buf.append(ch)
            escape = True
            continue
        if quote:
            buf.append(ch)
            if ch == '"':
                quote = False
            continue
        if ch == '"' and not paren:
            quote = True
        elif ch == "(":
            paren += 1
        elif ch == ")" and paren:
            paren -= 1
        elif not paren:
            if ch == "<":
                angle += 1
            elif ch == ">" and angle:
                angle -= 1
            elif not angle and ch in ",;":
                chunks.append(("".join(buf), ch))
                buf = []
                continue
            elif not angle and ch == ":":
                # group display name ends here: drop it
                buf = []
                continue
        buf.append(ch)
    chunks.append(("".join(buf), ""))
    return chunks


def make_address(raw: str, name: str, addr: str) -> Address:
    """An Address from its raw text, display name (RFC 2047 decoded here) and address."""
    name = decode_header_value(name).strip().strip('"').strip()
    address = _normalized(addr)
    return new_address(address=address or "", name=name, raw=raw, valid=address is not None)


@lru_cache(maxsize=4096)
def _normalized(addr: str) -> str | None:
    """normalize_address(addr) (a pure function of its text), None for an invalid one; kept
    for the correspondents that recur from message to message."""
    try:
        return normalize_address(addr)
    except InvalidAddress:
        return None


ANGLE_ADDR = re.compile(r"^(?P<name>[^<>]*)<(?P<addr>[^<>]*)>\s*(?:\([^()]*\))?$")


def unquote_name(name: str) -> str:
    """A display name without its surrounding quotes and quoted pairs."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def _parse_one_address(raw: str) -> Address:
    match = ANGLE_ADDR.match(raw)
    if match:
        # "Name <addr>" (the common case): take it literally, so that unquoted commas or
        # a mangled address stay visible instead of being rewritten by parseaddr
        name = match.group("name")
        if name.isascii() and '"' not in name and "=?" not in name and "\n" not in name:
            # make_address(raw, unquote_name(name), addr): no quotes to take off, and
            # decode_header_value finds nothing to unfold, fix or decode
            name = name.strip()
            address = _normalized(match.group("addr"))
            return new_address(address=address or "", name=name, raw=raw, valid=address is not None)
        return make_address(raw, unquote_name(name), match.group("addr"))
    name, addr = parseaddr(raw)
    if not addr and "<" not in raw:
        addr = raw
    if " " in addr.strip():
        # "Jane Doe jane@x.com" without brackets: the last token with an @ is the address
        tokens = addr.split()
        at = [t for t in tokens if "@" in t]
        if len(at) == 1 and at[0] == tokens[-1]:
            name, addr = " ".join(tokens[:-1]), at[0]
    return make_address(raw, name, addr)


def parse_address_list(value: str) -> tuple[Address, ...]:
    """Parse an address-list header value (raw or decoded) into Address objects."""
    value = fix_surrogates(unfold(value))
    return tuple(_parse_one_address(chunk) for chunk in _split_address_list(value))
