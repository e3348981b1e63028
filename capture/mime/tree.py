"""Bytes -> the compat32 Message tree: a fast split for well-formed mail that builds the very
tree the stdlib parser would (:func:`fast_tree`), the stdlib parser for anything unusual."""

from __future__ import annotations

import binascii
import re
from email.message import Message
from email.parser import HeaderParser, Parser
from email.policy import compat32
from itertools import pairwise

from capture.mime.bodies import a2b_base64, a2b_qp
from capture.mime.headers import boundary, content_type, first_values, get_header

__all__ = [
    "HEADER_BLOCK",
    "LONE_CR",
    "LONE_LF",
    "crlf_tree",
    "decoded_message",
    "fast_tree",
    "message_tree",
    "parse_header_block",
]

_BARE_LF = re.compile(rb"(?<!\r)\n")
# A LF that ends no CRLF, a CR that starts none. Both patterns start with a literal, so a
# search is a C scan for that byte (~2x faster than the three counts lf, crlf and cr it
# replaces); _BARE_LF, which starts with the look-behind, tries every position (~0.5 ms).
LONE_LF = re.compile(rb"\n(?<!\r\n)")
LONE_CR = re.compile(rb"\r(?!\n)")


def crlf_tree(
    data: bytes, defects: list[str], firsts: dict[int, dict[str, str]] | None = None
) -> Message:
    """The tree of a whole message's bytes, every lone LF first made a CRLF (defect bare_lf)."""
    if LONE_LF.search(data):
        defects.append("bare_lf")
        data = _BARE_LF.sub(b"\r\n", data)  # every LF now ends a CRLF
    return message_tree(data, crlf_only=LONE_CR.search(data) is None, firsts=firsts)


def message_tree(
    data: bytes, *, crlf_only: bool = False, firsts: dict[int, dict[str, str]] | None = None
) -> Message:
    """``email.message_from_bytes(data, policy=compat32)``, faster for well-formed mail.

    `crlf_only`: the caller knows every CR and LF in `data` belongs to a CRLF (see
    fast_tree). `firsts`: filled with first_values of the parts of a fast tree, by id()
    (left empty for a stdlib tree)."""
    text = data.decode("ascii", "surrogateescape")  # what BytesParser does
    tree = fast_tree(text, crlf_only=crlf_only, firsts=firsts)
    if tree is not None:
        return tree
    if firsts:
        firsts.clear()  # parts of an abandoned tree: their ids may be reused
    return Parser(policy=compat32).parsestr(text)


def decoded_message(inner: Message, cte: str, defects: list[str]) -> Message:
    """The message inside a base64 or quoted-printable message/* part (RFC 2046 5.2.1 forbids
    both, some clients do it anyway): the encoded text is what the stdlib parsed as `inner`,
    given back unchanged by as_string (maxheaderlen=0: no refolding); a message without
    headers is only its payload. A "base64" part whose text parsed with headers is not
    base64 (that alphabet has no colon): it is kept as parsed."""
    if inner._headers or not isinstance(inner._payload, str):
        if cte == "base64":
            return inner
        encoded = inner.as_string()
    else:
        encoded = inner._payload
    data = encoded.encode("ascii", "surrogateescape")
    try:
        # a2b_base64 (not strict) skips characters outside the alphabet
        data = a2b_base64(data) if cte == "base64" else a2b_qp(data)
    except (binascii.Error, ValueError):
        return inner
    return crlf_tree(data.lstrip(b"\r\n\t "), defects)


class _NotSimple(Exception):
    """The fast split cannot vouch for this input: the stdlib parser takes it."""


_HEADER_PARSER = HeaderParser(policy=compat32)

# A header block of plain "Name: value" fields (an RFC 5322 ftext name: printable ASCII but
# ":") and their continuation lines, CRLF line ends only. The feed parser reads such a block
# without a defect or a special case (no leading continuation, no From_ line, no line that
# is not a header): each field becomes (name, value) with the blanks after the colon and the
# final CRLF dropped and the inner CRLFs kept (compat32 header_source_parse).
_FIELD_NAME = r"[\041-\071\073-\176]+"
HEADER_BLOCK = re.compile(rf"(?:{_FIELD_NAME}:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*")
_HEADER_FIELD = re.compile(rf"({_FIELD_NAME}):[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n")


def parse_header_block(block: str) -> Message:
    """``HeaderParser(policy=compat32).parsestr(block + "\r\n")`` for a block of CRLF lines.

    Plain blocks (HEADER_BLOCK) are split here; anything else goes to the stdlib, which
    then records its defects as usual.

    One pass: _HEADER_FIELD.split gives [between, name, value, between, name, value, ...,
    between]. The block is a HEADER_BLOCK exactly when every `between` is empty (the
    fields follow each other from the start to the end; a continuation line, starting
    with a blank, can only extend the field before it, so the split is the one fullmatch
    would make), and the (name, value) pairs are then what _HEADER_FIELD.findall gives."""
    pieces = _HEADER_FIELD.split(block)
    if any(pieces[::3]):
        return _HEADER_PARSER.parsestr(block + "\r\n")
    msg = Message()
    msg._headers = list(zip(pieces[1::3], pieces[2::3], strict=True))
    msg._payload = ""  # what the stdlib sets from the (empty) rest after the blank line
    return msg


def fast_tree(
    text: str, *, crlf_only: bool = False, firsts: dict[int, dict[str, str]] | None = None
) -> Message | None:
    """The compat32 Message tree of well-formed mail, or None to let the stdlib parse it.

    The stdlib feed parser reads the body line by line in Python, matching every line against
    a regular expression per enclosing boundary (compiled anew for each multipart: boundaries
    are unique): ~60% of its time on typical mail. Here the body is split with str.find on
    boundary lines and header blocks with parse_header_block (the stdlib's HeaderParser for
    anything but plain "Name: value" lines), so headers, payloads, preambles and epilogues
    come out exactly as the stdlib would make them. Only input where that equivalence is
    plain is taken: CRLF line ends only, every header block ended by an empty line and free
    of defects, no message/* or multipart/digest parts, every multipart with a boundary, a
    7bit/8bit/binary encoding, an opening and a closing boundary and no empty parts. Anything
    else (including every kind of damage) returns None.
    tests/capture/pipeline/test_mime_tree.py checks the two trees are equal.

    `crlf_only`: the caller has checked that every CR and LF in text belongs to a CRLF
    (parse_email searches the bytes for lone ones anyway): the three scans of the whole text
    that check it here are then skipped.
    """
    if not crlf_only:
        crlf = text.count("\r\n")
        if text.count("\n") != crlf or text.count("\r") != crlf:
            return None
    try:
        return _fast_part(text, 0, len(text), top=True, firsts=firsts)
    except _NotSimple:
        return None


def _fast_part(
    text: str,
    start: int,
    end: int,
    *,
    top: bool,
    firsts: dict[int, dict[str, str]] | None = None,
) -> Message:
    """The part in text[start:end] (a whole message when `top`; else the lines between two
    boundary lines of its parent)."""
    if text.startswith("\r\n", start):
        block, body = "", start + 2
    else:
        blank = text.find("\r\n\r\n", start, end)
        if blank < 0:
            raise _NotSimple
        block, body = text[start : blank + 2], blank + 4
    msg = parse_header_block(block)
    if msg._payload != "" or msg.defects:  # a line that is no header, a misplaced From_ ...
        raise _NotSimple
    first = first_values(msg)  # the headers are final: the walk in parse_email reuses it
    if firsts is not None:
        firsts[id(msg)] = first
    ctype = content_type(msg, first)
    maintype = ctype.split("/")[0]  # get_content_maintype()
    if maintype == "message":
        raise _NotSimple
    if maintype != "multipart":
        # In a multipart, the line end before the next boundary belongs to the boundary.
        # (text.endswith(s, body, end) is text[body:end].endswith(s): one copy, not two)
        if not top and text.endswith("\r\n", body, end):
            end -= 2
        msg._payload = text[body:end]
        return msg
    sep = boundary(msg, first)
    cte = get_header(msg, first, "content-transfer-encoding")
    if (
        sep is None
        or ctype == "multipart/digest"
        or ("8bit" if cte is None else str(cte)).lower() not in ("7bit", "8bit", "binary")
    ):
        raise _NotSimple
    marks = _boundary_lines(text, "--" + sep, body, end)
    if len(marks) < 2 or marks[0][2] or not marks[-1][2]:
        raise _NotSimple  # no opening or no closing boundary
    first_mark = marks[0][0]
    if first_mark > body:
        msg.preamble = text[body : first_mark - 2]
    msg._payload = None
    for (_, opened, _), (closed, _, _) in pairwise(marks):
        if closed == opened:
            raise _NotSimple  # two boundary lines in a row (the stdlib skips both)
        msg.attach(_fast_part(text, opened, closed, top=False, firsts=firsts))
    epilogue: str | None = text[marks[-1][1] : end]
    if not top:
        if epilogue == "":
            epilogue = None
        elif epilogue.endswith("\r\n"):
            epilogue = epilogue[:-2]
    msg.epilogue = epilogue
    return msg


def _boundary_lines(text: str, sep: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """(line start, line end, closing?) of the boundary lines in text[start:end], up to and
    including the first closing one: the lines the stdlib matches with
    ``--boundary(--)?[ \\t]*(\\r\\n)?$``."""
    marks: list[tuple[int, int, bool]] = []
    pos = start
    while True:
        pos = text.find(sep, pos, end)
        if pos < 0:
            return marks
        if pos != start and text[pos - 2 : pos] != "\r\n":
            pos += 1
            continue
        after = pos + len(sep)
        closing = text.startswith("--", after)
        line_end = _line_end(text, after + 2, end) if closing else None
        if line_end is None:
            closing = False
            line_end = _line_end(text, after, end)
        if line_end is None:
            pos += 1
            continue
        marks.append((pos, line_end, closing))
        if closing:
            return marks
        pos = line_end


def _line_end(text: str, pos: int, end: int) -> int | None:
    """Where the line ends if only blanks are left on it from pos, else None."""
    while pos < end and text[pos] in " \t":
        pos += 1
    if pos == len(text):
        return pos
    if text.startswith("\r\n", pos) and pos + 2 <= end:
        return pos + 2
    return None
