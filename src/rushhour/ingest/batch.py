"""The unit every reader yields: a batch of parsed records plus the bookkeeping of what was skipped.

A :class:`RecordBatch` holds a polars frame with an ``ts`` column (Int64 epoch seconds), an optional
``duration`` column (seconds the record's value is spread over; absent or 0 means "an event at ts"),
one Int64/Float64 column per value (``packets``, ``bytes``, ``value``) and one String column per
label. A value named in ``counted`` (flow logs' ``requests``) has no column: each row counts 1. ``span`` is the ``(first, last)`` epoch second the batch proves was observed
(NODATA records included), ``source`` names where it came from so that coverage is tracked per source.

>>> r = Rejections()
>>> r.add("wrong field count", "f.log", 3)
>>> r.add("wrong field count", "f.log", 9)
>>> r.total, r.counts["wrong field count"], r.examples["wrong field count"]
(2, 2, ['f.log:3', 'f.log:9'])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

MAX_EXAMPLES = 5


@dataclass
class Rejections:
    """Skipped lines or records counted by reason, with up to five ``file:line`` examples each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, source: str, line: int | None, n: int = 1) -> None:
        self.counts[reason] += n
        where = source if line is None else f"{source}:{line}"
        ex = self.examples.setdefault(reason, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(where)

    def merge(self, other: Rejections) -> None:
        for reason, n in other.counts.items():
            self.counts[reason] += n
            ex = self.examples.setdefault(reason, [])
            ex.extend(other.examples.get(reason, [])[: MAX_EXAMPLES - len(ex)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            reason: {"count": n, "examples": self.examples.get(reason, [])}
            for reason, n in sorted(self.counts.items())
        }


@dataclass
class RecordBatch:
    """Parsed records of one chunk of one source (see the module docstring for the columns)."""

    frame: pl.DataFrame
    source: str
    values: tuple[str, ...]
    labels: tuple[str, ...] = ()
    span: tuple[int, int] | None = None
    lines: int = 0
    nodata: int = 0
    skipdata: int = 0
    rejected: Rejections = field(default_factory=Rejections)
    bytes_read: int = 0
    control_messages: int = 0
    counted: tuple[str, ...] = ()

    @property
    def records(self) -> int:
        return self.frame.height
