"""Durations (spec §8.3): `<integer><unit>` sequences, ISO-8601, humanized output, shares."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.kiket.durations import MAX_SECONDS, format_duration, parse_duration, parse_share


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30),
    ("15m", 900),
    ("5m", 300),
    ("1h", 3600),
    ("4h", 14400),
    ("24h", 86400),
    ("48h", 172800),
    ("72h", 259200),
    ("120h", 432000),
    ("168h", 604800),
    ("336h", 1209600),
    ("720h", 2592000),
    ("1d", 86400),
    ("1d12h", 129600),
    ("2w", 1209600),
    ("1w2d3h4m5s", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
    ("1h30m", 5400),
    ("1h 30m", 5400),
    (" 90m ", 5400),
    ("PT4H", 14400),
    ("P1DT2H", 93600),
    ("PT15M", 900),
    ("PT30S", 30),
    ("P1D", 86400),
    ("P2W", 1209600),
    ("PT1H30M", 5400),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("value", "fragment"), [
    ("48", "no unit"),
    (48, "no unit"),
    (1.5, "no unit"),
    ("0m", "greater than zero"),
    ("0h0m", "greater than zero"),
    ("PT0S", "greater than zero"),
    ("-5m", "negative"),
    ("5H", "uppercase"),
    ("15M", "uppercase"),
    ("1D12h", "uppercase"),
    ("1.5h", "fractional"),
    ("junk", "not understood"),
    ("h", "not understood"),
    ("5 m", "not understood"),
    ("5min", "not understood"),
    ("5y", "not understood"),
    ("١٢h", "not understood"),
    ("", "empty"),
    ("   ", "empty"),
    (None, "must be a string"),
    (True, "no unit"),
    (["1h"], "must be a string"),
    ("P1M", "ISO-8601"),
    ("P1Y", "ISO-8601"),
    ("PT", "ISO-8601"),
    ("P", "ISO-8601"),
    ("P1DT", "ISO-8601"),
    ("pt4h", "not understood"),
    ("PT1.5H", "ISO-8601"),
    ("1" * 100 + "s", "too long"),
    ("99999999w", "ten years"),
])
def test_parse_duration_rejects_with_a_user_facing_message(value, fragment):
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0m"),
    (45, "45s"),
    (90, "1m 30s"),
    (900, "15m"),
    (3600, "1h"),
    (12000, "3h 20m"),
    (12005, "3h 20m"),
    (86400, "1d"),
    (93600, "1d 2h"),
    (86400 + 60, "1d"),
    (-3600, "-1h"),
    (-12000, "-3h 20m"),
    (14 * 86400, "14d"),
    (59.9, "59s"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=60, max_value=MAX_SECONDS))
def test_format_duration_round_trips_within_its_precision(seconds):
    text = format_duration(seconds)
    parsed = parse_duration(text)
    assert 0 <= seconds - parsed < 86400
    assert len(text.split()) <= 2


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.none()))
def test_parse_duration_only_raises_value_error(value):
    try:
        assert parse_duration(value) > 0
    except ValueError as error:
        assert str(error)


@pytest.mark.parametrize(("value", "share"), [("80%", 0.8), ("100%", 1.0), ("50.5%", 0.505), (" 25 % ", 0.25)])
def test_parse_share(value, share):
    assert parse_share(value) == pytest.approx(share)


@pytest.mark.parametrize("value", ["24h", "80", 80, 0.8, None, "PT4H"])
def test_parse_share_returns_none_for_non_percentages(value):
    assert parse_share(value) is None


@pytest.mark.parametrize("value", ["0%", "150%", "abc%", "-5%", "%"])
def test_parse_share_rejects_bad_percentages(value):
    with pytest.raises(ValueError):
        parse_share(value)
