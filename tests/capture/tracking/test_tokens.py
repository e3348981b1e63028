"""capture/tracking/tokens.py: compact, signed, expiring; a key rotation keeps them working."""

from __future__ import annotations

from capture.tracking import tokens


def test_an_open_token_is_44_characters_and_round_trips():
    t = tokens.make_open_token(123456, 1_800_000_000, 1_900_000_000)
    assert len(t) == 44
    claims = tokens.read_token(t, tokens.OPEN, now=1_850_000_000)
    assert claims == tokens.Claims(tokens.OPEN, 123456, 1_800_000_000, 1_900_000_000)


def test_a_click_token_carries_its_url():
    url = "https://example.org/ä?q=1&r=%2F#frag"
    t = tokens.make_click_token(7, 1_800_000_000, 1_900_000_000, 3, url)
    claims = tokens.read_token(t, tokens.CLICK, now=1_800_000_001)
    assert (claims.tracked_id, claims.link, claims.url) == (7, 3, url)
    assert tokens.read_token(t, tokens.OPEN, now=1_800_000_001) is None


def test_a_token_expires_at_its_expiry():
    t = tokens.make_open_token(1, 100, 200)
    assert tokens.read_token(t, tokens.OPEN, now=199.9) is not None
    assert tokens.read_token(t, tokens.OPEN, now=200) is None


def test_another_secret_does_not_verify_but_a_fallback_does(settings):
    t = tokens.make_open_token(1, 100, 2**32 - 1)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-" + "x" * 40
    assert tokens.read_token(t, tokens.OPEN, now=150) is None
    settings.SECRET_KEY_FALLBACKS = [old]
    assert tokens.read_token(t, tokens.OPEN, now=150) is not None


def test_garbage_is_refused_without_raising():
    for junk in ("", "=", "AAAA", "!!!!", "A" * 44, "é" * 10, "A" * 5000):
        assert tokens.read_token(junk, tokens.OPEN, now=0) is None
        assert tokens.read_token(junk, tokens.CLICK, now=0) is None
