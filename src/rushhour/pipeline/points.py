"""Points: the unit that flows from sources into the bucketizer.

A point is (series name, labels, event time, value): "this many requests at this instant". Sources
turn whatever they read (flow-log lines, metric dumps, JSON) into :class:`PointBatch` objects.

The wire format for pushing points (HTTP, NATS, stdin) is JSON lines, one object per line::

    {"series": "requests", "labels": {"region": "eu"}, "time": "2026-03-02T08:15:03Z", "value": 3}

``time`` is ISO 8601 (a zone is required; ``Z`` for UTC) or epoch seconds; ``value`` defaults to 1
(one record). A bad line is skipped and counted by reason unless ``strict``.

>>> b = parse_points(b'{"series": "r", "time": 60, "value": 2}\\n{"series": "r", "time": 61}\\n', "push")
>>> b.keys, b.times.tolist(), b.values.tolist()
(['r', 'r'], [60.0, 61.0], [2.0, 1.0])
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from rushhour.errors import InputError
from rushhour.store.db import series_key


@dataclass
class PointBatch:
    """Parallel arrays of points. ``keys[i]`` is the canonical series key of point i."""

    keys: list[str]
    times: np.ndarray
    values: np.ndarray
    labels: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def empty(cls) -> PointBatch:
        return cls([], np.zeros(0), np.zeros(0))

    @classmethod
    def from_rows(cls, rows: list[tuple[str, dict[str, str], float, float]]) -> PointBatch:
        """From (name, labels, epoch seconds, value) tuples."""
        keys: list[str] = []
        labels: dict[str, tuple[str, dict[str, str]]] = {}
        for name, lab, _, _ in rows:
            key = series_key(name, lab)
            labels.setdefault(key, (name, dict(lab)))
            keys.append(key)
        times = np.array([r[2] for r in rows], dtype=float)
        values = np.array([r[3] for r in rows], dtype=float)
        return cls(keys, times, values, labels)


def parse_points(
    data: bytes, source: str, *, strict: bool = False, first_line: int = 1
) -> PointBatch:
    """Parse JSON-lines points; bad lines are counted by reason (or raise with ``strict``)."""
    rows: list[tuple[str, dict[str, str], float, float]] = []
    rejected: Counter[str] = Counter()
    examples: list[str] = []
    for offset, raw in enumerate(data.splitlines()):
        if not raw.strip():
            continue
        line = first_line + offset
        try:
            rows.append(_point(raw, source, line))
        except InputError as exc:
            if strict:
                raise
            rejected[exc.reason] += 1
            if len(examples) < 5:
                examples.append(str(exc))
    batch = PointBatch.from_rows(rows)
    batch.rejected, batch.examples = rejected, examples
    return batch


def _point(raw: bytes, source: str, line: int) -> tuple[str, dict[str, str], float, float]:
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(
            "not JSON", source=source, line=line, expected="one JSON object per line"
        ) from None
    if not isinstance(obj, dict):
        raise InputError("not a JSON object", source=source, line=line)
    name = obj.get("series")
    if not isinstance(name, str) or not name:
        raise InputError(
            "missing series",
            source=source,
            line=line,
            field="series",
            expected="a non-empty string",
        )
    labels = obj.get("labels") or {}
    if not isinstance(labels, dict):
        raise InputError("labels not an object", source=source, line=line, field="labels")
    value = obj.get("value", 1)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(
            "value not a number",
            source=source,
            line=line,
            field="value",
            expected="a finite number",
        )
    return (
        name,
        {str(k): str(v) for k, v in labels.items()},
        _time(obj.get("time"), source, line),
        float(value),
    )


def _time(value: Any, source: str, line: int) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            dt = None
        if dt is not None and dt.tzinfo is not None:
            return dt.timestamp()
        if dt is not None:
            raise InputError(
                "time without zone",
                source=source,
                line=line,
                field="time",
                expected="ISO 8601 with a zone, e.g. 2026-03-02T08:15:00Z",
            )
    raise InputError(
        "time unreadable",
        source=source,
        line=line,
        field="time",
        expected="ISO 8601 with a zone or epoch seconds",
    )
