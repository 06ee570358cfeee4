"""Plain series files: CSV, JSON lines and Parquet with a timestamp, a value and optional labels.

Columns: a time column (``timestamp``, ``Timestamp``, ``time``, ``ts`` or ``start``; ISO 8601 text,
or epoch seconds/milliseconds as numbers), a value column (``value``, ``Value``, ``count`` or
``requests``), and any further text columns as series labels (e.g. ``series``, ``status``,
``region``). Every row is one sample that counts in the bucket of its time. Rows whose time or value
cannot be read are skipped and counted with their line number; naive times are UTC.

>>> [b] = read_series_file(b"timestamp,value,status\\n2026-01-01T00:00:00Z,5,ok\\n2026-01-01T00:01:00Z,x,ok\\n", format="csv")
>>> b.frame.rows(), dict(b.rejected.counts)
([(1767225600, 5.0, 'ok')], {'non-numeric value': 1})
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from rushhour.errors import InputError
from rushhour.ingest.batch import RecordBatch, Rejections

TIME_COLUMNS = ("timestamp", "Timestamp", "time", "ts", "start", "date")
VALUE_COLUMNS = ("value", "Value", "count", "requests")


def _pick(columns: list[str], names: tuple[str, ...], what: str, source: str) -> str:
    for n in names:
        if n in columns:
            return n
    raise InputError(
        f"no {what} column (found {columns})",
        source=source,
        expected=f"one of {', '.join(names)}",
    )


def _load(src: str | Path | bytes, format: str, source: str) -> pl.DataFrame:
    data: bytes | Path = src if isinstance(src, bytes) else Path(src)
    if isinstance(data, bytes) and data[:2] == b"\x1f\x8b":
        import gzip

        data = gzip.decompress(data)
    elif isinstance(data, Path) and format != "parquet":
        with data.open("rb") as fh:
            if fh.read(2) == b"\x1f\x8b":
                import gzip

                data = gzip.decompress(data.read_bytes())
    buf = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        if format == "parquet":
            return pl.read_parquet(buf)
        if format == "jsonl":
            return pl.read_ndjson(buf, infer_schema_length=None)
        return pl.read_csv(buf, infer_schema=False)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", source=source) from exc
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"not a readable {format} file ({str(exc).splitlines()[0]})", source=source
        ) from exc


def read_series_file(
    src: str | Path | bytes, *, format: str = "csv", source: str | None = None
) -> Iterator[RecordBatch]:
    """Yield the batch of a CSV / JSON lines / Parquet series file (see the module docstring)."""
    name = source or (str(src) if not isinstance(src, bytes) else "<bytes>")
    df = _load(src, format, name)
    tcol = _pick(df.columns, TIME_COLUMNS, "time", name)
    vcol = _pick(df.columns, VALUE_COLUMNS, "value", name)
    labels = [
        c
        for c in df.columns
        if c not in (tcol, vcol) and df[c].dtype in (pl.String, pl.Categorical)
    ]
    t = df[tcol]
    if t.dtype.is_numeric():
        ts = t.cast(pl.Float64)
        ts = pl.select(pl.when(ts > 1e11).then(ts / 1000).otherwise(ts).cast(pl.Int64)).to_series()
    elif t.dtype == pl.Datetime:
        ts = t.dt.epoch("s")
    else:
        parsed = t.cast(pl.String).str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
        ts = parsed.dt.epoch("s")
    v = df[vcol].cast(pl.Float64, strict=False)
    frame = pl.DataFrame({"ts": ts.cast(pl.Int64), "value": v}).with_columns(
        *(df[c].cast(pl.String).fill_null("-") for c in labels)
    )
    rejected = Rejections()
    first_data_line = 2 if format == "csv" else 1
    bad_t = frame["ts"].is_null()
    bad_v = frame["value"].is_null() | frame["value"].is_nan() | (frame["value"] < 0)
    for mask, reason in ((bad_t, "unreadable time"), (bad_v & ~bad_t, "non-numeric value")):
        rows = mask.arg_true().to_list()
        for r in rows[:5]:
            rejected.add(reason, name, r + first_data_line if format != "parquet" else None)
        if len(rows) > 5:
            rejected.counts[reason] += len(rows) - 5
    frame = frame.filter(~(bad_t | bad_v))
    span = None if frame.height == 0 else (int(frame["ts"].min()), int(frame["ts"].max()))  # type: ignore[arg-type]
    yield RecordBatch(
        frame=frame,
        source=name,
        values=("value",),
        labels=tuple(labels),
        span=span,
        lines=df.height,
        rejected=rejected,
    )
