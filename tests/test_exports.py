"""Exports: CSV Timestamp,Value, DeepAR JSON lines, Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from rushhour.series.bucketing import BucketedSeries, Series
from rushhour.series.exports import write_csv, write_deepar, write_parquet

T0 = 1767225600  # Thursday 2026-01-01, a US holiday


def bucketed() -> BucketedSeries:
    starts = T0 + 86400 * np.arange(3)
    a = Series(("requests", (("action", "ACCEPT"),)), 86400, starts, np.array([5.0, np.nan, 2.5]))
    r = Series(("requests", (("action", "REJECT"),)), 86400, starts, np.array([1.0, np.nan, 0.0]))
    return BucketedSeries(
        86400, {a.key: a, r.key: r}, covered=[(T0, T0 + 86400), (T0 + 2 * 86400, T0 + 3 * 86400)]
    )


def test_csv(tmp_path: Path) -> None:
    s = next(iter(bucketed()))
    write_csv(s, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text().splitlines() == [
        "Timestamp,Value",
        "2026-01-01T00:00:00Z,5",
        "2026-01-02T00:00:00Z,",
        "2026-01-03T00:00:00Z,2.5",
    ]


def test_deepar_lines_with_cat_nan_and_features_extended(tmp_path: Path) -> None:
    write_deepar(bucketed(), tmp_path / "d.jsonl", prediction_length=2, country="US")
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [x["cat"] for x in lines] == [[0], [1]]
    assert lines[0]["start"] == "2026-01-01 00:00:00" and lines[0]["target"] == [5, "NaN", 2.5]
    holiday, weekend = lines[0]["dynamic_feat"]
    assert len(holiday) == len(weekend) == 3 + 2
    assert holiday == [1, 0, 0, 0, 0] and weekend == [0, 0, 1, 1, 0]


def test_parquet_long_format(tmp_path: Path) -> None:
    write_parquet(bucketed(), tmp_path / "s.parquet")
    df = pl.read_parquet(tmp_path / "s.parquet")
    assert df.columns == ["timestamp", "series", "action", "value"] and df.height == 6
    assert df["value"].null_count() == 2
