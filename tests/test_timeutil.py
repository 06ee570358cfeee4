from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rushhour.errors import UsageError
from rushhour.timeutil import (
    bucket_seconds,
    floor_to_bucket,
    format_duration,
    parse_duration,
    utc,
    zone,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("45", 45),
        ("250ms", 0.25),
        (" 10m ", 600),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "m5", "5m3", "1h-2m"])
def test_parse_duration_rejects_with_example(text: str) -> None:
    with pytest.raises(UsageError, match="duration") as info:
        parse_duration(text)
    assert "90s" in info.value.hint


@given(st.integers(min_value=0, max_value=10**7))
def test_format_then_parse_roundtrips(seconds: int) -> None:
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@given(
    st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=86400)
)
def test_floor_to_bucket_is_half_open_and_aligned(t: int, width: int) -> None:
    start = floor_to_bucket(t, width)
    assert start % width == 0
    assert start <= t < start + width


def test_bucket_seconds_rejects_fractions_and_zero() -> None:
    assert bucket_seconds("5m") == 300
    with pytest.raises(UsageError, match="whole number"):
        bucket_seconds("1500ms")
    with pytest.raises(UsageError):
        bucket_seconds("0s")


def test_zone_and_utc() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Base'"):
        zone("Mars/Base")
    naive = datetime(2026, 1, 1, 12)
    assert utc(naive).tzinfo is UTC
    plus2 = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert utc(plus2).hour == 10
