"""The reading side of the DeepAR JSON-lines format (SageMaker's): one series per line.

``{"start": "YYYY-MM-DD HH:MM:SS", "target": [...], "cat": [...], "dynamic_feat": [[...], ...]}``;
``target`` may hold gaps as ``"NaN"`` or ``null``; ``cat`` (categorical series ids) and
``dynamic_feat`` (one row per feature, at least as long as ``target``; rushhour's are the holiday
and weekend flags) are optional. Pure: no torch or GluonTS needed.

>>> import io
>>> rec = read_deepar_jsonl(io.StringIO(
...     '{"start": "2026-01-05 00:00:00", "target": [1, "NaN", null, 4], "cat": [2],'
...     ' "dynamic_feat": [[0, 0, 1, 1], [0, 0, 0, 0]]}\\n'))[0]
>>> rec.start.isoformat(), rec.target.tolist()[0], int(rec.target.shape[0]), rec.cat, rec.dynamic_feat.shape
('2026-01-05T00:00:00+00:00', 1.0, 4, [2], (2, 4))
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rushhour.errors import InputError


@dataclass
class DeepARRecord:
    """One series of a DeepAR export."""

    start: pd.Timestamp
    target: np.ndarray
    cat: list[int]
    dynamic_feat: np.ndarray  # shape (features, steps); (0, steps) when absent

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.strftime("%Y-%m-%d %H:%M:%S"),
            "target": [None if math.isnan(v) else float(v) for v in self.target],
            "cat": list(self.cat),
            "dynamic_feat": self.dynamic_feat.tolist(),
        }


def read_deepar_jsonl(source: str | Path | io.StringIO) -> list[DeepARRecord]:
    """Every record of a JSON-lines file; errors name the line and the field."""
    name = "<input>" if isinstance(source, io.StringIO) else str(source)
    if isinstance(source, io.StringIO):
        lines = source.getvalue().splitlines()
    else:
        path = Path(source)
        if not path.exists():
            raise InputError("file does not exist", source=name, hint="check the path")
        lines = path.read_text(encoding="utf-8").splitlines()
    records = [parse_record(text, name, n) for n, text in enumerate(lines, start=1) if text.strip()]
    if not records:
        raise InputError("no series in the file", source=name, expected="one JSON object per line")
    return records


def parse_record(text: str, source: str = "<input>", line: int | None = None) -> DeepARRecord:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", source=source, line=line) from exc
    return record_from(obj, source, line)


def record_from(obj: Any, source: str = "<input>", line: int | None = None) -> DeepARRecord:
    """One record from a decoded JSON object (a line of an export, or an inference instance)."""
    if not isinstance(obj, dict):
        raise InputError("each line must be a JSON object", source=source, line=line)
    where: dict[str, Any] = {"source": source, "line": line}
    start = _start(obj.get("start"), where)
    target = _target(obj.get("target"), where)
    cat = obj.get("cat", [])
    if not isinstance(cat, list) or not all(isinstance(c, int) and c >= 0 for c in cat):
        raise InputError("cat must be a list of non-negative integers", field="cat", **where)
    feats = obj.get("dynamic_feat", [])
    if not isinstance(feats, list) or not all(isinstance(f, list) for f in feats):
        raise InputError("dynamic_feat must be a list of lists", field="dynamic_feat", **where)
    rows = []
    for i, f in enumerate(feats):
        if len(f) < len(target):
            raise InputError(
                f"dynamic_feat[{i}] has {len(f)} values for {len(target)} targets",
                field="dynamic_feat",
                expected="at least one value per target",
                **where,
            )
        try:
            rows.append(np.asarray(f, dtype=float))
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"dynamic_feat[{i}] holds a non-number", field="dynamic_feat", **where
            ) from exc
    width = min((len(r) for r in rows), default=len(target))
    dyn = np.vstack([r[:width] for r in rows]) if rows else np.zeros((0, len(target)))
    return DeepARRecord(start=start, target=target, cat=cat, dynamic_feat=dyn)


def _start(value: Any, where: dict[str, Any]) -> pd.Timestamp:
    if not isinstance(value, str):
        raise InputError("start is missing", field="start", expected="YYYY-MM-DD HH:MM:SS", **where)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"cannot read start {value!r}", field="start", expected="YYYY-MM-DD HH:MM:SS", **where
        ) from exc
    return pd.Timestamp(dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC))


def _target(value: Any, where: dict[str, Any]) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise InputError("target must be a non-empty list", field="target", **where)
    out = np.empty(len(value))
    for i, v in enumerate(value):
        if v is None or (isinstance(v, str) and v.lower() == "nan"):
            out[i] = np.nan
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[i] = float(v)
        else:
            raise InputError(
                f"target[{i}] is {v!r}", field="target", expected='a number, "NaN" or null', **where
            )
    return out
