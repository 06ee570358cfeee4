"""Read a ``timestamp,value`` CSV into a UTC series (a minimal reader; ingest owns the full one).

Timestamps are NAB style ``YYYY-MM-DD HH:MM:SS`` (naive, read as UTC) or ISO 8601 with a zone.

>>> import io
>>> s = read_series(io.StringIO("timestamp,value\\n2014-07-01 00:00:00,10844\\n2014-07-01T00:30:00Z,8127\\n"))
>>> s.index[1].isoformat(), float(s.iloc[1])
('2014-07-01T00:30:00+00:00', 8127.0)
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from rushhour.errors import InputError


def read_series(source: str | Path | io.StringIO) -> pd.Series:
    """A float Series on a sorted UTC index; empty values and ``NaN`` become gaps."""
    name = str(source) if not isinstance(source, io.StringIO) else "<input>"
    if isinstance(source, io.StringIO):
        return _parse(source, name)
    path = Path(source)
    if not path.exists():
        raise InputError("file does not exist", source=name, hint="check the path")
    with path.open(newline="", encoding="utf-8") as fh:
        return _parse(fh, name)


def _parse(fh: io.TextIOBase | io.StringIO, name: str) -> pd.Series:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        raise InputError("the file is empty", source=name, expected="a header timestamp,value")
    cols = [h.strip().lower() for h in header]
    if "timestamp" not in cols or "value" not in cols:
        raise InputError(
            f"header {header} lacks a timestamp or value column",
            source=name,
            line=1,
            expected="columns timestamp,value",
        )
    ti, vi = cols.index("timestamp"), cols.index("value")
    stamps: list[datetime] = []
    values: list[float] = []
    for line, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) <= max(ti, vi):
            raise InputError(
                "too few fields", source=name, line=line, expected=f"{len(cols)} fields"
            )
        stamps.append(_stamp(row[ti], name, line))
        values.append(_value(row[vi], name, line))
    if not stamps:
        raise InputError("no rows after the header", source=name, expected="timestamp,value rows")
    s = pd.Series(values, index=pd.DatetimeIndex(stamps), name="value", dtype=float)
    s = s[~s.index.duplicated(keep="last")].sort_index()
    s.index.name = "timestamp"
    return s


def _stamp(text: str, name: str, line: int) -> datetime:
    t = text.strip()
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"cannot read timestamp {t!r}",
            source=name,
            line=line,
            field="timestamp",
            expected="YYYY-MM-DD HH:MM:SS (UTC) or ISO 8601 with a zone",
        ) from exc
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _value(text: str, name: str, line: int) -> float:
    t = text.strip()
    if t == "" or t.lower() in ("nan", "null"):
        return math.nan
    try:
        v = float(t)
    except ValueError as exc:
        raise InputError(
            f"value {t!r} is not a number",
            source=name,
            line=line,
            field="value",
            expected="a number",
        ) from exc
    if math.isinf(v):
        raise InputError(
            "value is infinite", source=name, line=line, field="value", expected="a finite number"
        )
    return v
