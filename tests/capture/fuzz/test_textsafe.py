"""capture.textsafe: text PostgreSQL can store, cleaned once, the same object when clean."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from capture.errors import InputRejected
from capture.textsafe import clean_strings, clean_text, is_storable


@dataclass(frozen=True)
class Inner:
    name: str
    flag: bool


@dataclass(frozen=True)
class Outer:
    title: str
    when: datetime
    payload: bytes
    pairs: tuple[tuple[str, str], ...]
    inner: tuple[Inner, ...]
    extra: dict = field(default_factory=dict)


def outer(**changes) -> Outer:
    values = {
        "title": "Quote for April",
        "when": datetime(2025, 3, 24, tzinfo=UTC),
        "payload": b"\x00\xff binary stays as it is",
        "pairs": (("Subject", "Grüße"), ("To", "a@b.example")),
        "inner": (Inner("Jane", True),),
        "extra": {"categories": ["quote"]},
    }
    return Outer(**{**values, **changes})


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("a\x00b", "a\ufffdb"),
        ("Grüße\x00", "Grüße\ufffd"),
        ("lone \ud800 high", "lone \ufffd high"),
        ("lone \udcff low", "lone \ufffd low"),
        ("pair \ud83d\ude00 joined", "pair \U0001f600 joined"),
        ("\x00\ud800\x00", "\ufffd\ufffd\ufffd"),
    ],
)
def test_clean_text_replaces_nul_and_lone_surrogates_and_joins_a_pair(text, cleaned):
    assert not is_storable(text)
    assert clean_text(text) == cleaned
    assert is_storable(clean_text(text))
    cleaned.encode("utf-8")  # psycopg's encoding


@pytest.mark.parametrize(
    "text", ["", "plain ASCII", "Grüße, 東京 \U0001f600", "tab\tand\r\nbreaks"]
)
def test_clean_text_gives_clean_text_back_as_the_same_object(text):
    assert is_storable(text)
    assert clean_text(text) is text


def test_clean_strings_gives_a_clean_structure_back_as_the_same_object():
    value = outer()
    assert clean_strings(value) is value


@pytest.mark.parametrize(
    ("changes", "read"),
    [
        ({"title": "Quote\x00"}, lambda o: o.title),
        ({"pairs": (("Subject", "Gr\udcfc\x00e"),)}, lambda o: o.pairs[0][1]),
        ({"inner": (Inner("Jane", True), Inner("J\x00", False))}, lambda o: o.inner[1].name),
        ({"extra": {"categories": ["ok", "bad\ud800"]}}, lambda o: o.extra["categories"][1]),
        ({"extra": {"key\x00": "value"}}, lambda o: next(iter(o.extra))),
    ],
)
def test_clean_strings_cleans_every_str_inside_and_copies_only_what_changed(changes, read):
    value = outer(**changes)
    cleaned = clean_strings(value)
    assert cleaned is not value
    assert "\ufffd" in read(cleaned)
    assert is_storable(read(cleaned))
    assert cleaned.payload == value.payload  # bytes are not text
    assert cleaned.when == value.when
    assert clean_strings(cleaned) is cleaned
    # the untouched parts are shared, not copied
    if "inner" not in changes:
        assert cleaned.inner is value.inner


def test_clean_strings_leaves_the_frozen_original_unchanged():
    value = outer(title="Quote\x00")
    clean_strings(value)
    assert value.title == "Quote\x00"


def test_a_rejection_detail_that_quotes_the_input_is_storable():
    rejected = InputRejected("unparseable", "ValueError: bad '\x00\ud800'")
    assert rejected.detail == "ValueError: bad '\ufffd\ufffd'"
    assert is_storable(str(rejected))
