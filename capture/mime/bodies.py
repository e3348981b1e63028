"""A leaf part's payload: transfer decoding, charsets (declared, else guessed), file name and
disposition."""

from __future__ import annotations

import binascii
import codecs
import quopri
import re
from email.message import Message
from email.utils import collapse_rfc2231_value, unquote
from functools import lru_cache

from capture.mime.headers import decode_header_value, get_header, header_text

__all__ = [
    "a2b_base64",
    "a2b_qp",
    "content_charset",
    "decode_body",
    "decode_text",
    "decoded_payload",
    "disposition",
    "filename",
    "part_payload",
]

_LATIN1_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "iso_8859-1"})
_ASCII_LABELS = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "646"})


@lru_cache(maxsize=256)
def _codec_for(charset: str) -> str | None:
    charset = charset.strip().strip("\"'").lower()
    if charset in _LATIN1_LABELS:
        # WHATWG: iso-8859-1 labels mean windows-1252 (Outlook's smart quotes live at 0x80-0x9f)
        return "cp1252"
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return None


def decode_text(payload: bytes, charset: str | None, defects: list[str]) -> str:
    """Decode a text part: declared charset -> utf-8 -> cp1252 -> latin-1. Never raises."""
    declared = (charset or "us-ascii").strip().strip("\"'").lower()
    if declared in _ASCII_LABELS:
        if payload.isascii():
            return payload.decode("ascii")
        codec: str | None = None
        mislabelled = True
    else:
        codec = _codec_for(declared)
        mislabelled = False
        if codec is None:
            defects.append("unknown_charset")
    if codec is not None:
        try:
            return payload.decode(codec)
        except (UnicodeDecodeError, LookupError):
            mislabelled = True
        except Exception:  # some codecs raise odd errors on junk input
            mislabelled = True
    if mislabelled:
        defects.append("charset_mislabelled")
    for fallback in ("utf-8", "cp1252"):
        if fallback == codec:
            continue
        try:
            return payload.decode(fallback)
        except UnicodeDecodeError:
            continue
    return payload.decode("latin-1")


# str.replace("\r\n", "\n") is about 3x slower than this literal regex on bodies with many
# lines (same result: both replace non-overlapping matches left to right).
_CRLF = re.compile("\r\n")
# Left to get_payload: base64 (it records decoding defects on the part) and uuencode.
_STDLIB_DECODED_CTES = frozenset({"base64", "x-uuencode", "uuencode", "uue", "x-uue"})

a2b_qp = quopri.a2b_qp or quopri.decodestring  # quopri imports it from binascii
a2b_base64 = binascii.a2b_base64


def decoded_payload(part: Message, first: dict[str, str] | None = None) -> bytes | None:
    """``part.get_payload(decode=True)``; for an ASCII text payload (no surrogate-escaped
    8-bit bytes, nothing to re-encode) in quoted-printable, base64 or a pass-through
    encoding this is the stdlib's own code minus its surrogate scan of the whole payload.

    Quoted-printable: quopri.decodestring is binascii.a2b_qp (header=False) when binascii
    has it, as CPython's always does. Base64: the stdlib decodes
    ``b"".join(payload.splitlines())`` (bytes.splitlines breaks at CR, LF and CRLF only: the
    same as deleting every CR and LF) with email._encoded_words.decode_b, which for a length
    that is a multiple of 4 first tries ``b64decode(data, validate=True)``, i.e.
    ``a2b_base64(data, strict_mode=True)``, and records no defect when that succeeds; here
    the same call, and the stdlib for the rest (bad padding or characters: its defects)."""
    payload = part._payload
    if isinstance(payload, str) and payload.isascii():  # never a multipart: that is a list
        value = (
            part.get("content-transfer-encoding")
            if first is None
            else get_header(part, first, "content-transfer-encoding")
        )
        cte = "" if value is None else str(value).lower()
        if cte == "quoted-printable":
            return a2b_qp(payload.encode("ascii"))
        if cte == "base64":
            data = payload.encode("ascii").translate(None, b"\r\n")
            if not len(data) % 4:
                try:
                    return a2b_base64(data, strict_mode=True)
                except binascii.Error:
                    pass
        elif cte not in _STDLIB_DECODED_CTES:  # 7bit, 8bit, binary, none, unknown: as is
            return payload.encode("ascii")
    return part.get_payload(decode=True)


def part_payload(part: Message, defects: list[str], first: dict[str, str] | None = None) -> bytes:
    """A leaf part's decoded bytes (b"" when undecodable, with a defect); never raises."""
    try:
        payload = decoded_payload(part, first)
    except Exception:  # stdlib decoders on hostile input
        defects.append("undecodable_payload")
        return b""
    if payload is None:
        return b""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogateescape")
    for defect in part.defects:
        name = type(defect).__name__
        if name.startswith("InvalidBase64"):
            defects.append("bad_base64")
    return payload


def content_charset(part: Message, ct_params: dict[str, str] | None) -> str | None:
    """``part.get_content_charset()``, from the plain Content-Type parameters if any."""
    if ct_params is None:
        return part.get_content_charset()
    charset = ct_params.get("charset")
    return None if charset is None else charset.lower()  # ASCII: the us-ascii check passes


def decode_body(
    part: Message, ct_params: dict[str, str] | None, first: dict[str, str], defects: list[str]
) -> str:
    """A text/plain or text/html part's text, its CRLFs made LFs; never raises."""
    payload = part_payload(part, defects, first)
    text = decode_text(payload, content_charset(part, ct_params), defects)
    return _CRLF.sub("\n", text)  # text.replace("\r\n", "\n"), ~3x faster


def filename(
    part: Message, ct_params: dict[str, str] | None, cd_params: dict[str, str] | None
) -> str:
    """The attachment file name; the params are plain_params of Content-Type and
    Content-Disposition (None: not plain, use the stdlib)."""
    if ct_params is not None and cd_params is not None:
        # part.get_filename() or part.get_param("name"): no tuples (no RFC 2231) here, and
        # collapse_rfc2231_value(text) is unquote(text)
        raw = cd_params.get("filename")
        if raw is None:
            raw = ct_params.get("name")
        raw = (unquote(raw).strip() if raw is not None else None) or ct_params.get("name")
    else:
        try:
            raw = part.get_filename() or part.get_param("name", header="content-type")
        except Exception:  # broken RFC 2231 continuations
            return ""
    if raw is None:
        return ""
    if isinstance(raw, tuple):
        raw = collapse_rfc2231_value(raw)
    name = decode_header_value(str(raw)).strip().strip('"')
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    return "" if name in (".", "..") else name


def disposition(part: Message, first: dict[str, str] | None = None) -> str:
    """The Content-Disposition type ("attachment", "inline"), lowercase; "" without one."""
    value = header_text(part, "content-disposition", first)
    return value.split(";", 1)[0].strip().lower() if value else ""
