"""Turn a source's bytes into points, by format.

``points`` is the JSON-lines wire format (:mod:`rushhour.pipeline.points`). ``csv`` is a plain series,
``timestamp,value`` with optional extra columns taken as labels; timestamps are ISO 8601 (a naive one
is UTC) or epoch seconds. ``auto`` decides by file name.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from rushhour.errors import InputError
from rushhour.pipeline.points import PointBatch, parse_points
from rushhour.store.db import series_key

SUPPORTED = ("points", "csv", "flowlog", "cloudwatch-subscription", "metrics", "parquet")
INGEST_FORMATS = ("flowlog", "cloudwatch-subscription", "metrics", "parquet")


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
    if ".parquet" in suffixes:
        return "parquet"
    if {".log", ".gz", ".txt"} & set(suffixes) or "output-mass" in name:
        return "sniff"  # flow logs, subscription payloads, metric dumps: decided by content
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
    fmt = _resolve_format(fmt, source, data)
    if fmt in INGEST_FORMATS:
        batch = _ingested(data, fmt, source, strict)
    elif fmt == "points":
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


def _looks_like_points(data: bytes) -> bool:
    """The first line is a JSON object with a ``series`` key: rushhour's points format."""
    import json

    line = data.lstrip()[:4096].split(b"\n", 1)[0]
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return False  # perhaps a metric dump or a payload: the content decides
    return isinstance(obj, dict) and "series" in obj


def read_points_file(
    path: Path,
    fmt: str,
    source: str,
    *,
    series: str = "requests",
    labels: dict[str, str] | None = None,
) -> PointBatch:
    """Like :func:`read_points`, streaming large flow logs and payload files from disk."""
    with path.open("rb") as fh:
        head = fh.read(64 << 10)
    fmt = _resolve_format(fmt, source, head)
    if fmt in INGEST_FORMATS:
        return _with_labels(_ingested(path, fmt, source, False), labels or {})
    return read_points(path.read_bytes(), fmt, source, series=series, labels=labels)


def _resolve_format(fmt: str, source: str, head: bytes) -> str:
    """A concrete format for ``auto``: the name first, then the content (``head`` is the start of it)."""
    if fmt == "auto":
        fmt = detect_format(source)
        if fmt == "points" and not _looks_like_points(head):
            fmt = "sniff"
    if fmt == "sniff":
        fmt = _by_content(_head(head), source)
        if fmt not in INGEST_FORMATS:
            fmt = "points"  # nothing else fits: the points parser says, line by line, what is wrong
    return fmt


def _by_content(head: bytes, source: str) -> str:
    """The ingest readers' detection; "points" when nothing fits (its parser then says, line by line,
    what is wrong)."""
    from rushhour.ingest.detect_format import detect_format as by_content

    try:
        return by_content(head, source)
    except InputError:
        if any(s in PurePath(source).suffixes for s in (".jsonl", ".json", ".ndjson")):
            return "points"
        raise


def _head(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        import gzip
        import zlib

        try:
            return gzip.GzipFile(fileobj=io.BytesIO(data)).read(64 << 10)
        except (OSError, EOFError, zlib.error):
            return data[:4096]
    return data[: 64 << 10]


def _ingested(data: bytes | Path, fmt: str, source: str, strict: bool) -> PointBatch:
    """Flow logs, subscription payloads, metric dumps and Parquet through the ingest readers.

    Flow-log records count 1 each in series ``requests`` labelled by ``action``; metric values keep
    their series (``status=ok|failed``). A value spread over a period (metrics sampled every 4-6
    minutes) is split over the buckets it covers in proportion, so totals are kept.
    """
    import polars as pl

    from rushhour.ingest.detect_format import read_records

    keys: list[str] = []
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    label_map: dict[str, tuple[str, dict[str, str]]] = {}
    rejected: Counter[str] = Counter()
    examples: list[str] = []
    for rb in read_records(data, format=fmt, source=source):
        if strict and rb.rejected.total:
            reason, n = rb.rejected.counts.most_common(1)[0]
            where = rb.rejected.examples.get(reason, [source])[0]
            raise InputError(f"{reason} ({n} records)", source=where)
        for reason, n in rb.rejected.counts.items():
            rejected[reason] += n
            examples.extend(
                f"{ex}: {reason}"
                for ex in rb.rejected.examples.get(reason, [])[: 5 - len(examples)]
            )
        frame = rb.frame
        if frame.height == 0:
            continue
        labels = [c for c in rb.labels if c in frame.columns]
        names = list(rb.counted) + [
            v for v in rb.values if v in frame.columns and v not in rb.counted
        ]
        for value_name in names[:1]:  # the request count: the first value a reader offers
            counted = value_name in rb.counted
            total = (
                pl.len().cast(pl.Float64) if counted else pl.col(value_name).cast(pl.Float64).sum()
            )
            spread = "duration" in frame.columns
            group = [*labels, "ts", *(["duration"] if spread else [])]
            agg = frame.group_by(group).agg(total.alias("v")).sort("ts")
            series = "requests" if value_name in rb.counted else _series_name(value_name)
            for part in agg.partition_by(labels, as_dict=False) if labels else [agg]:
                lab = {c: str(part[c][0]) for c in labels}
                key = series_key(series, lab)
                label_map[key] = (series, lab)
                t = part["ts"].to_numpy().astype(float)
                v = part["v"].to_numpy().astype(float)
                if spread:
                    t, v = _split(t, v, part["duration"].to_numpy().astype(float))
                keys.extend([key] * len(t))
                times.append(t)
                values.append(v)
    if not times:
        return PointBatch([], np.zeros(0), np.zeros(0), {}, rejected, examples)
    return PointBatch(
        keys, np.concatenate(times), np.concatenate(values), label_map, rejected, examples
    )


def _series_name(value_name: str) -> str:
    return "requests" if value_name in ("value", "count", "requests") else value_name


def _split(
    t: np.ndarray, v: np.ndarray, duration: np.ndarray, step: float = 60.0
) -> tuple[np.ndarray, np.ndarray]:
    """Spread each value over ``[t, t + duration)`` in pieces of at most one minute, by overlap."""
    out_t: list[float] = []
    out_v: list[float] = []
    for ti, vi, di in zip(t.tolist(), v.tolist(), duration.tolist(), strict=True):
        if di <= 0:
            out_t.append(ti)
            out_v.append(vi)
            continue
        edge = ti
        end = ti + di
        while edge < end:
            nxt = min(end, (np.floor(edge / step) + 1) * step)
            out_t.append(edge)
            out_v.append(vi * (nxt - edge) / di)
            edge = nxt
    return np.asarray(out_t), np.asarray(out_v)
