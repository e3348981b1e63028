"""Text that PostgreSQL can store: no NUL, no surrogate code points (pure Python, no Django).

A UTF-8 database refuses U+0000 in text and varchar (``invalid byte sequence for encoding
"UTF8": 0x00``) and jsonb refuses the ``\\u0000`` escape; psycopg cannot encode a surrogate
(U+D800-U+DFFF) to UTF-8 at all, and jsonb refuses the ``\\udXXX`` escapes json.dumps would
write for one. Hostile or broken mail produces both easily (an encoded word or a
quoted-printable ``=00``, a UTF-7 or unicode-escape charset label, 8-bit bytes kept by
surrogateescape), and a row holding either fails on every retry. So text from outside is
cleaned once, where it enters the model: :func:`clean_strings` over the parsed message
(capture/mime.py) and over a raw message's spec (capture/ingest.py).

Each NUL and each lone surrogate becomes U+FFFD; a surrogate pair (two code points) becomes
the character it encodes. Clean text is returned as it is (the same object), after a check
that costs two C scans for ASCII text and a UTF-8 encoding otherwise.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any, TypeVar

__all__ = [
    "INT4_MAX",
    "REPLACEMENT",
    "clean_strings",
    "clean_text",
    "is_storable",
    "storable_count",
    "storable_moment",
]

T = TypeVar("T")

REPLACEMENT = "\ufffd"
INT4_MAX = 2**31 - 1  # PostgreSQL integer


def is_storable(text: str) -> bool:
    """True when PostgreSQL can store `text` in a text or jsonb column as it is."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")  # ~10x faster than a regular expression search for surrogates
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: str) -> str:
    """`text` with each NUL and lone surrogate made U+FFFD (`text` itself when clean)."""
    if is_storable(text):
        return text
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    # through UTF-16: a high+low pair becomes its character, a lone one U+FFFD
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_strings(value: T) -> T:
    """`value` with clean_text applied to every str inside it (in tuples, lists, dict keys
    and values, dataclass fields); `value` itself, not a copy, when nothing changes."""
    if _all_storable(value):
        return value
    return _clean(value)


def storable_count(text: str) -> int:
    """`text` as a count a PostgreSQL integer column holds: ASCII digits up to INT4_MAX, else 0
    (str.isdigit() also takes "²", which int() refuses; a bigger number wraps or overflows)."""
    if text.isascii() and text.isdigit() and len(text) <= 10:
        value = int(text)
        if value <= INT4_MAX:
            return value
    return 0


def storable_moment(value: datetime | None) -> datetime | None:
    """`value` if its UTC time falls in the years 1-9999, else None. PostgreSQL stores a
    timestamptz beyond (year 0001 at +14:00 is 1 BC in UTC), but no Python reads it back."""
    if value is None:
        return None
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return value


_LEAVES = frozenset({bool, int, float, bytes, bytearray, type(None), datetime, date, timedelta})
_join = "".join
_flat = chain.from_iterable


def _all_storable(value: Any) -> bool:
    """The fast path of clean_strings: every str inside `value` (as _clean walks it) gathered
    into one, one is_storable check. One loop, no call per node; a tuple of str (Message-ID
    references, defects) or of str pairs (the headers) joined in C. On the mail fixtures this
    costs about 4-5% of a small message's parse (and nothing measurable on large ones)."""
    stack = [value]
    strs: list[str] = []
    pop, push, add = stack.pop, stack.append, strs.append
    leaves = _LEAVES
    while stack:
        item = pop()
        cls = item.__class__
        if cls is tuple or cls is list:
            if not item:
                continue
            first = item[0].__class__
            try:
                if first is str:
                    add(_join(item))
                    continue
                if first is tuple:
                    add(_join(_flat(item)))
                    continue
            except TypeError:  # not all str after all: walk the items
                pass
            stack.extend(item)
        elif cls is str:
            add(item)
        elif cls in leaves:
            continue
        elif cls is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif (names := _dataclass_fields(cls)) is not None:
            for name in names:
                field_value = getattr(item, name)
                if field_value.__class__ is str:
                    add(field_value)
                elif field_value.__class__ not in leaves:
                    push(field_value)
        elif isinstance(item, str):
            add(str(item))
    return is_storable(_join(strs))


def _clean(value: Any) -> Any:
    cls = value.__class__
    if cls is str:
        return clean_text(value)
    if cls is tuple or cls is list:
        out: list[Any] | None = None
        for i, item in enumerate(value):
            new = _clean(item)
            if new is not item:
                if out is None:
                    out = list(value)
                out[i] = new
        if out is None:
            return value
        return tuple(out) if cls is tuple else out
    if cls is dict:
        for key, item in value.items():
            if _clean(key) is not key or _clean(item) is not item:
                return {_clean(k): _clean(v) for k, v in value.items()}
        return value
    names = _dataclass_fields(cls)
    if names is not None:
        changes = {}
        for name in names:
            item = getattr(value, name)
            new = _clean(item)
            if new is not item:
                changes[name] = new
        if not changes:
            return value
        copied = copy.copy(value)  # no __init__ or __post_init__ run again, frozen or not
        for name, new in changes.items():
            object.__setattr__(copied, name, new)
        return copied
    if isinstance(value, str):  # a str subclass: its plain text, cleaned
        return clean_text(str(value))
    return value


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _dataclass_fields(cls: type) -> tuple[str, ...] | None:
    """The field names of dataclass `cls`, None for any other class (both cached)."""
    try:
        return _FIELDS[cls]
    except KeyError:
        pass
    names = None
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))
    _FIELDS[cls] = names
    return names
