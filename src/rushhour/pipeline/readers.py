"""Turn a source's bytes into points, by format.

``points`` is the JSON-lines wire format (:mod:`rushhour.pipeline.points`). ``csv`` is a plain series,
``timestamp,value`` with optional extra columns taken as labels; timestamps are ISO 8601 (a naive one
is UTC) or epoch seconds. ``auto`` decides by file name.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import PurePath

import numpy as np
import pandas as pd

from rushhour.errors import InputError
from rushhour.pipeline.points import PointBatch, parse_points
from rushhour.store.db import series_key

SUPPORTED = ("points", "csv")


def detect_format(name: str) -> str:
    """``auto`` by file name.

    >>> detect_format("x.jsonl"), detect_format("traffic.csv")
    ('points', 'csv')
    """
    suffixes = [s.lower() for s in PurePath(name).suffixes]
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "points"
    if ".csv" in suffixes:
        return "csv"
    raise InputError(
        "cannot tell the format from the file name",
        source=name,
        expected=f"a name ending in .jsonl or .csv, or a source `format` among {', '.join(SUPPORTED)}",
    )


def read_points(
    data: bytes,
    fmt: str,
    source: str,
    *,
    series: str = "requests",
    labels: dict[str, str] | None = None,
    strict: bool = False,
) -> PointBatch:
    """Points from ``data``; ``labels`` are added to every point."""
    if fmt == "auto":
        fmt = detect_format(source)
    if fmt == "points":
        batch = parse_points(data, source, strict=strict)
    elif fmt == "csv":
        batch = _csv(data, source, series, strict)
    else:
        raise InputError(
            f"format {fmt!r} is not readable by the live pipeline yet",
            source=source,
            expected=f"one of {', '.join(SUPPORTED)}",
        )
    return _with_labels(batch, labels or {})


def _csv(data: bytes, source: str, series: str, strict: bool) -> PointBatch:
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(
            f"not a CSV file ({exc})", source=source, expected="a header line timestamp,value"
        ) from None
    cols = {c.strip().lower(): c for c in frame.columns}
    if "timestamp" not in cols or "value" not in cols:
        raise InputError(
            f"missing columns, found {list(frame.columns)}",
            source=source,
            line=1,
            expected="a header with timestamp and value",
        )
    ts_raw, val_raw = frame[cols["timestamp"]], frame[cols["value"]]
    times = _parse_times(ts_raw)
    values = pd.to_numeric(val_raw, errors="coerce").to_numpy(dtype=float)
    bad_time, bad_value = np.isnan(times), ~np.isfinite(values)
    rejected: Counter[str] = Counter()
    examples: list[str] = []
    for reason, mask, field in (
        ("time unreadable", bad_time, "timestamp"),
        ("value not a number", bad_value & ~bad_time, "value"),
    ):
        for i in np.flatnonzero(mask)[:5]:
            err = InputError(reason, source=source, line=int(i) + 2, field=field)
            if strict:
                raise err
            if len(examples) < 5:
                examples.append(str(err))
        if mask.any():
            rejected[reason] += int(mask.sum())
    ok = ~(bad_time | bad_value)
    extra = [c for c in frame.columns if c not in (cols["timestamp"], cols["value"])]
    rows_labels = frame.loc[ok, extra].to_dict("records") if extra else [{}] * int(ok.sum())
    keys: list[str] = []
    label_map: dict[str, tuple[str, dict[str, str]]] = {}
    for lab in rows_labels:
        lab = {str(k): str(v) for k, v in lab.items()}
        key = series_key(series, lab)
        label_map.setdefault(key, (series, lab))
        keys.append(key)
    batch = PointBatch(keys, times[ok], values[ok], label_map, rejected, examples)
    return batch


def _parse_times(raw: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(raw, errors="coerce")
    if numeric.notna().all() and len(raw):
        return numeric.to_numpy(dtype=float)
    parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
    seconds = parsed.astype("int64").to_numpy() / 1e9
    return np.where(parsed.isna().to_numpy(), np.nan, seconds)


def _with_labels(batch: PointBatch, labels: dict[str, str]) -> PointBatch:
    if not labels:
        return batch
    keys: list[str] = []
    label_map: dict[str, tuple[str, dict[str, str]]] = {}
    remap: dict[str, str] = {}
    for key in batch.keys:
        if key not in remap:
            name, lab = batch.labels.get(key, (key, {}))
            merged = {**lab, **labels}
            new = series_key(name, merged)
            remap[key] = new
            label_map[new] = (name, merged)
        keys.append(remap[key])
    return PointBatch(keys, batch.times, batch.values, label_map, batch.rejected, batch.examples)
