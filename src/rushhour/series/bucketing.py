"""Tumbling, epoch-aligned, half-open buckets ``[start, start + width)`` over record batches.

Contract: :class:`Bucketizer` is fed :class:`~rushhour.ingest.batch.RecordBatch` es one at a time
(a file's blocks, NATS messages, HTTP pushes) and keeps only partial sums per (series, bucket), so
memory grows with the number of buckets, not records. :meth:`Bucketizer.result` gives a
:class:`BucketedSeries`: for each series key (value name + labels) a dense run of buckets from the
first to the last covered one, where a covered bucket without records is 0 and a bucket that no source
covers is NaN and reported as a gap.

Events (no ``duration``) count in the bucket of their ``ts``. Samples with a ``duration`` (metrics
sampled every 4-6 minutes) are spread over ``[ts, ts + duration)`` in proportion to the overlap with
each bucket, so the total is preserved exactly up to float rounding.

>>> import polars as pl
>>> from rushhour.ingest.batch import RecordBatch
>>> b = RecordBatch(pl.DataFrame({"ts": [0, 59, 60, 200], "requests": [1, 1, 1, 1]}),
...                 source="s", values=("requests",), span=(0, 200))
>>> bz = Bucketizer(60)
>>> bz.add(b)
>>> s = bz.result()["requests"]
>>> s.starts.tolist(), s.values.tolist()
([0, 60, 120, 180], [2.0, 1.0, 0.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from rushhour.errors import UsageError
from rushhour.ingest.batch import RecordBatch, Rejections

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
SPREAD_ROWS = 1 << 15


def series_name(key: SeriesKey) -> str:
    """``requests{action=ACCEPT}`` style display name of a key."""
    name, labels = key
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"


@dataclass
class Series:
    """One bucketed series: bucket starts (epoch s), values (NaN where no input covers)."""

    key: SeriesKey
    width: int
    starts: np.ndarray
    values: np.ndarray

    @property
    def name(self) -> str:
        return series_name(self.key)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.key[1])

    def gaps(self) -> list[tuple[int, int]]:
        """Half-open ``[start, end)`` epoch ranges of missing buckets."""
        return _runs(self.starts, np.isnan(self.values), self.width)

    def to_pandas(self) -> Any:
        import pandas as pd

        idx = pd.to_datetime(self.starts, unit="s", utc=True)
        return pd.Series(self.values, index=idx, name=self.name)


def _runs(starts: np.ndarray, mask: np.ndarray, width: int) -> list[tuple[int, int]]:
    if not mask.any():
        return []
    m = mask.astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], m, [0]))))
    return [
        (int(starts[a]), int(starts[b - 1]) + width)
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


@dataclass
class BucketedSeries:
    """All series of an ingest, with the covered ranges and the ingest's bookkeeping."""

    width: int
    series: dict[SeriesKey, Series]
    covered: list[tuple[int, int]]
    records: int = 0
    lines: int = 0
    nodata: int = 0
    skipdata: int = 0
    rejected: Rejections = field(default_factory=Rejections)

    def __getitem__(self, name: str) -> Series:
        for key, s in self.series.items():
            if series_name(key) == name:
                return s
        raise KeyError(name)

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series.values())

    def __len__(self) -> int:
        return len(self.series)

    @property
    def buckets(self) -> int:
        return max((len(s.starts) for s in self.series.values()), default=0)

    def gaps(self) -> list[tuple[int, int]]:
        """Uncovered ``[start, end)`` ranges between the first and last covered bucket."""
        return [(a[1], b[0]) for a, b in zip(self.covered, self.covered[1:], strict=False)]


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def spread(
    ts: np.ndarray, duration: np.ndarray, value: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread each value over ``[ts, ts + duration)`` onto buckets by overlap; returns (bucket
    starts, amounts, sample row), one entry per (sample, bucket) overlap. Zero durations land whole
    in the bucket of ``ts``.

    >>> b, v, r = spread(np.array([30]), np.array([120]), np.array([12.0]), 60)
    >>> b.tolist(), v.tolist(), r.tolist()
    ([0, 60, 120], [3.0, 6.0, 3.0], [0, 0, 0])
    """
    ts = ts.astype(np.int64)
    duration = np.maximum(duration.astype(np.int64), 0)
    first = ts - ts % width
    last_t = ts + np.maximum(duration - 1, 0)
    n = (last_t - last_t % width - first) // width + 1
    rows = np.repeat(np.arange(len(ts)), n)
    offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    b = first[rows] + offs * width
    lo = np.maximum(b, ts[rows])
    hi = np.minimum(b + width, ts[rows] + duration[rows])
    d = duration[rows]
    frac = np.where(d > 0, (hi - lo) / np.where(d > 0, d, 1), 1.0)
    return b, value.astype(np.float64)[rows] * frac, rows


class Bucketizer:
    """Incremental bucketing (see the module docstring). ``labels`` restricts the label columns
    kept (None keeps every label of the batches); ``values`` restricts the value columns."""

    def __init__(
        self,
        width: int,
        *,
        labels: Iterable[str] | None = None,
        values: Iterable[str] | None = None,
        compact_every: int = 64,
    ) -> None:
        if width <= 0:
            raise UsageError(f"bucket width must be a positive number of seconds, got {width}")
        self.width = width
        self.labels = None if labels is None else tuple(labels)
        self.values = None if values is None else tuple(values)
        self.compact_every = compact_every
        self._parts: list[pl.DataFrame] = []
        self._spans: dict[str, tuple[int, int]] = {}
        self._extra: list[tuple[int, int]] = []
        self.records = self.lines = self.nodata = self.skipdata = 0
        self.rejected = Rejections()

    def cover(self, start: int, end: int) -> None:
        """Declare ``[start, end)`` observed (a stream knows which minutes it listened to)."""
        if end > start:
            lo = start - start % self.width
            self._extra.append((lo, end + (-end) % self.width))

    def add(self, batch: RecordBatch) -> None:
        """Fold one batch in: partial sums per (bucket, labels, value)."""
        self.records += batch.records
        self.lines += batch.lines
        self.nodata += batch.nodata
        self.skipdata += batch.skipdata
        self.rejected.merge(batch.rejected)
        if batch.span is not None:
            lo, hi = batch.span
            old = self._spans.get(batch.source)
            self._spans[batch.source] = (
                (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
            )
        labels = [n for n in batch.labels if self.labels is None or n in self.labels]
        values = [v for v in batch.values if self.values is None or v in self.values]
        if not values or batch.frame.height == 0:
            return
        f = batch.frame
        if "duration" in f.columns and f["duration"].max() not in (None, 0):
            f = f.with_columns(pl.lit(1, pl.Int64).alias(v) for v in batch.counted if v in values)
            # in slices, so that the (sample, bucket) overlaps of a long dump never all coexist
            parts = [
                self._spread(f.slice(i, SPREAD_ROWS), labels, values)
                for i in range(0, f.height, SPREAD_ROWS)
            ]
            part = (
                parts[0]
                if len(parts) == 1
                else pl.concat(parts)
                .group_by("__bucket", *labels)
                .agg(pl.col(v).sum() for v in values)
            )
        else:
            aggs = [
                pl.len().cast(pl.Float64).alias(v)
                if v in batch.counted
                else pl.col(v).sum().cast(pl.Float64)
                for v in values
            ]
            part = f.group_by(
                (pl.col("ts") - pl.col("ts") % self.width).alias("__bucket"), *labels
            ).agg(aggs)
        # enum labels (a flow log's action) group fast; partial sums keep them as text
        part = part.with_columns(
            pl.col(n).cast(pl.String) for n in labels if part[n].dtype != pl.String
        ).unpivot(
            index=["__bucket", *labels], on=values, variable_name="__series", value_name="__value"
        )
        for n in self.labels or ():
            if n not in part.columns:
                part = part.with_columns(pl.lit("-").alias(n))
        self._parts.append(part)
        if len(self._parts) >= self.compact_every:
            self._compact()

    def _spread(self, f: pl.DataFrame, labels: list[str], values: list[str]) -> pl.DataFrame:
        ts = f["ts"].to_numpy()
        dur = f["duration"].fill_null(0).to_numpy()
        out: dict[str, Any] = {}
        rows = np.zeros(0, dtype=np.int64)
        for v in values:
            b, amounts, rows = spread(
                ts, dur, f[v].cast(pl.Float64).fill_null(0).to_numpy(), self.width
            )
            out["__bucket"], out[v] = b, amounts
        frame = pl.DataFrame(out).with_columns(f[lab].gather(rows) for lab in labels)
        return frame.group_by("__bucket", *labels).agg(pl.col(v).sum() for v in values)

    def _compact(self) -> None:
        if len(self._parts) > 1:
            df = pl.concat(self._parts, how="diagonal_relaxed")
            keys = [c for c in df.columns if c != "__value"]
            self._parts = [df.group_by(keys).agg(pl.col("__value").sum())]

    def covered(self) -> list[tuple[int, int]]:
        w = self.width
        spans = [(lo - lo % w, hi - hi % w + w) for lo, hi in self._spans.values()]
        return _merge([*spans, *self._extra])

    def result(self) -> BucketedSeries:
        """The bucketed series so far (the Bucketizer can keep receiving batches)."""
        self._compact()
        covered = self.covered()
        series: dict[SeriesKey, Series] = {}
        if self._parts and covered:
            df = self._parts[0]
            label_cols = [c for c in df.columns if c not in ("__bucket", "__series", "__value")]
            w = self.width
            first, last = covered[0][0], covered[-1][1]
            starts = np.arange(first, last, w, dtype=np.int64)
            mask = np.ones(len(starts), dtype=bool)
            for lo, hi in covered:
                mask[(lo - first) // w : (hi - first) // w] = False
            for (name, *labs), grp in df.group_by(["__series", *label_cols], maintain_order=False):
                vals = np.zeros(len(starts))
                idx = ((grp["__bucket"].to_numpy() - first) // w).astype(np.int64)
                inside = (idx >= 0) & (idx < len(starts))
                np.add.at(vals, idx[inside], grp["__value"].to_numpy()[inside])
                vals[mask] = np.nan
                key: SeriesKey = (
                    str(name),
                    tuple(
                        (c, "-" if v is None else str(v))
                        for c, v in zip(label_cols, labs, strict=True)
                    ),
                )
                series[key] = Series(key, w, starts, vals)
        return BucketedSeries(
            width=self.width,
            series=dict(sorted(series.items())),
            covered=covered,
            records=self.records,
            lines=self.lines,
            nodata=self.nodata,
            skipdata=self.skipdata,
            rejected=self.rejected,
        )


def bucketize(
    batches: Iterable[RecordBatch],
    width: int,
    *,
    labels: Iterable[str] | None = None,
    values: Iterable[str] | None = None,
) -> BucketedSeries:
    """Bucket a whole iterator of batches (the one-shot form of :class:`Bucketizer`)."""
    bz = Bucketizer(width, labels=labels, values=values)
    for b in batches:
        bz.add(b)
    return bz.result()
