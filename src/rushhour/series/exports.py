"""Writing bucketed series: CSV ``Timestamp,Value``, DeepAR JSON lines, Parquet (long format).

DeepAR lines follow SageMaker's layout: ``start`` ("YYYY-MM-DD HH:MM:SS"), ``target`` with the
string "NaN" for missing buckets, optional ``cat`` (an index per series key) and ``dynamic_feat``
(holiday and weekend flags, extended ``prediction_length`` buckets past the end when asked).

>>> import numpy as np
>>> from rushhour.series.bucketing import Series
>>> s = Series(("requests", ()), 60, np.array([0, 60]), np.array([3.0, np.nan]))
>>> deepar_line(s, cat=[0])
{'start': '1970-01-01 00:00:00', 'target': [3, 'NaN'], 'cat': [0]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rushhour.series.bucketing import BucketedSeries, Series
from rushhour.series.cleaning import holiday_flags, weekend_flags


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_csv(series: Series, path: Path) -> None:
    """``Timestamp,Value`` rows; a missing bucket has an empty value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write("Timestamp,Value\n")
        for t, v in zip(series.starts.tolist(), series.values.tolist(), strict=True):
            fh.write(f"{_iso(t)},{'' if math.isnan(v) else _num(v)}\n")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(round(v, 6))


def deepar_line(
    series: Series,
    *,
    cat: Sequence[int] | None = None,
    prediction_length: int = 0,
    dynamic_feat: bool = False,
    country: str | None = None,
    subdiv: str | None = None,
    tz: str = "UTC",
) -> dict[str, Any]:
    """One DeepAR record of a series (see the module docstring)."""
    start = datetime.fromtimestamp(int(series.starts[0]), UTC).strftime("%Y-%m-%d %H:%M:%S")
    target: list[float | str] = [
        "NaN" if math.isnan(v) else (int(v) if float(v).is_integer() else round(v, 6))
        for v in series.values.tolist()
    ]
    line: dict[str, Any] = {"start": start, "target": target}
    if cat is not None:
        line["cat"] = list(cat)
    if dynamic_feat:
        n = len(series.starts) + prediction_length
        starts = int(series.starts[0]) + series.width * np.arange(n, dtype=np.int64)
        hol = holiday_flags(starts, country=country, subdiv=subdiv, tz=tz)
        wkd = weekend_flags(starts, tz=tz)
        line["dynamic_feat"] = [hol.astype(int).tolist(), wkd.astype(int).tolist()]
    return line


def write_deepar(
    bucketed: BucketedSeries,
    path: Path,
    *,
    prediction_length: int = 0,
    with_cat: bool = True,
    dynamic_feat: bool = True,
    country: str | None = None,
    subdiv: str | None = None,
    tz: str = "UTC",
) -> None:
    """One JSON line per series; ``cat`` numbers the series keys in sorted order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i, s in enumerate(bucketed):
            line = deepar_line(
                s,
                cat=[i] if with_cat else None,
                prediction_length=prediction_length,
                dynamic_feat=dynamic_feat,
                country=country,
                subdiv=subdiv,
                tz=tz,
            )
            fh.write(json.dumps(line) + "\n")


def to_frame(bucketed: BucketedSeries) -> pl.DataFrame:
    """Long frame: timestamp (UTC), series, one column per label, value (null when missing)."""
    label_names = sorted({k for s in bucketed for k in s.labels})
    frames = []
    for s in bucketed:
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": (s.starts * 1000).astype("datetime64[ms]"),
                    "series": [s.key[0]] * len(s.starts),
                    **{n: [s.labels.get(n, "-")] * len(s.starts) for n in label_names},
                    "value": s.values,
                }
            ).with_columns(
                pl.col("timestamp").dt.replace_time_zone("UTC"),
                pl.col("value").fill_nan(None),
            )
        )
    if not frames:
        return pl.DataFrame(
            schema={"timestamp": pl.Datetime("ms", "UTC"), "series": pl.String, "value": pl.Float64}
        )
    return pl.concat(frames)


def write_parquet(bucketed: BucketedSeries, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    to_frame(bucketed).write_parquet(path)
