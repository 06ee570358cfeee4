"""Durations, bucket widths and time zones: small pure helpers used everywhere.

>>> parse_duration("90s")
datetime.timedelta(seconds=90)
>>> parse_duration("1h30m")
datetime.timedelta(seconds=5400)
>>> bucket_seconds("5m")
300
>>> floor_to_bucket(125, 60)
120
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rushhour.errors import UsageError

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``5m``, ``2h``, ``1d``, ``1w`` or combinations such as ``1h30m``.

    A bare number means seconds. Raises :class:`UsageError` naming the text otherwise.
    """
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise UsageError("empty duration", hint="write a duration such as 90s, 5m, 2h or 1d")
    try:
        return timedelta(seconds=float(s))
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise UsageError(
            f"cannot read duration {text!r}",
            hint="write a duration such as 90s, 5m, 2h, 1d or 1h30m",
        )
    return timedelta(seconds=total)


def bucket_seconds(text: str | int) -> int:
    """Bucket width in whole seconds (``1m`` -> 60). Must be a positive whole number of seconds."""
    seconds = float(text) if isinstance(text, int) else parse_duration(text).total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise UsageError(
            f"bucket width {text!r} must be a positive whole number of seconds",
            hint="use a width such as 1m or 5m",
        )
    return int(seconds)


def floor_to_bucket(epoch_seconds: int, width: int) -> int:
    """Start of the epoch-aligned half-open bucket ``[start, start + width)`` holding the instant."""
    return epoch_seconds - epoch_seconds % width


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or a :class:`UsageError` saying how to name one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"unknown time zone {name!r}",
            hint="use an IANA zone name such as UTC, Europe/Berlin or America/New_York",
        ) from exc


def utc(dt: datetime) -> datetime:
    """Make ``dt`` timezone-aware UTC; a naive datetime is taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def from_epoch(seconds: float) -> datetime:
    """UTC datetime of an epoch second."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def to_epoch(dt: datetime) -> int:
    """Whole epoch seconds of an aware (or UTC-naive) datetime."""
    return int(utc(dt).timestamp())


def format_duration(td: timedelta) -> str:
    """Compact human form: ``1h30m``, ``45s``.

    >>> format_duration(timedelta(seconds=5400))
    '1h30m'
    """
    secs = int(td.total_seconds())
    if secs == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            out.append(f"{secs // size}{unit}")
            secs %= size
    return "".join(out)
