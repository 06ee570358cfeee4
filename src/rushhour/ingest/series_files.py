"""Plain series files: CSV, JSON lines and Parquet with a timestamp, a value and optional labels.

Columns: a time column (``timestamp``, ``Timestamp``, ``time``, ``ts``, ``start`` or ``date``; ISO
8601 text, or epoch seconds/milliseconds as numbers or numeric text), a value column (``value``,
``Value``, ``count`` or ``requests``), and further columns as series labels (e.g. ``series``,
``status``, ``region``): every other CSV column, the keys of the first JSON line whose value there
is text, Parquet's text columns. Every row is one sample that counts in the bucket of its time.
Rows whose time or value cannot be read are skipped and counted with their line number; naive times
are UTC. Each time is read on its own (no format guessed from the first row), so a file's result
does not depend on where it is cut.

Reading is streamed, so memory is bounded by the block, not the file: CSV and JSON lines (plain or
gzip) in blocks cut at newlines (:func:`~rushhour.ingest.blocks.iter_blocks`), each parsed by
polars with every column as text (a CSV block gets the header line in front, so it parses exactly
as the whole file would); a block with a line polars cannot parse is halved around it and the small
piece read line by line, the bad line counted (``malformed line``). A record is one line: a quoted
CSV field may not hold a newline. Parquet is read by record batches (pyarrow ``iter_batches``).
Line numbers count physical lines from 1 (the CSV header is line 1) in every block.

>>> [b] = read_series_file(b"timestamp,value,status\\n2026-01-01T00:00:00Z,5,ok\\n2026-01-01T00:01:00Z,x,ok\\n", format="csv")
>>> b.frame.rows(), dict(b.rejected.counts)
([(1767225600, 5.0, 'ok')], {'non-numeric value': 1})
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import polars as pl

from rushhour.errors import InputError
from rushhour.ingest.batch import MAX_EXAMPLES, RecordBatch, Rejections
from rushhour.ingest.blocks import GZIP_MAGIC, iter_blocks, line_count, split_parse

TIME_COLUMNS = ("timestamp", "Timestamp", "time", "ts", "start", "date")
VALUE_COLUMNS = ("value", "Value", "count", "requests")
SERIES_BLOCK = 8 << 20
PARQUET_ROWS = 1 << 17
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_LINE = "__line"


def _pick(columns: list[str], names: tuple[str, ...], what: str, source: str) -> str:
    for n in names:
        if n in columns:
            return n
    raise InputError(
        f"no {what} column (found {columns})",
        source=source,
        expected=f"one of {', '.join(names)}",
    )


@dataclass(frozen=True)
class _Columns:
    """The columns a file's rows are read as, fixed by its header (CSV), first line (JSON lines)
    or schema (Parquet), so that every block is read alike."""

    time: str
    value: str
    labels: tuple[str, ...]


# -- times and values -------------------------------------------------------------------------------
def epoch_seconds(t: pl.Series) -> pl.Series:
    """Epoch seconds (Int64, null if unreadable) of times given as numbers (seconds, or
    milliseconds above 1e11), datetimes, or text: numeric text, or ISO 8601 with or without a
    zone (naive is UTC), each value read on its own.

    >>> epoch_seconds(pl.Series(["2026-01-01T00:00:00Z", "2026-01-01 01:00:00+01:00",
    ...     "1767225600000", "2026-01-01", "soon"])).to_list()
    [1767225600, 1767225600, 1767225600, 1767225600, None]
    """
    if t.dtype == pl.Date:
        t = t.cast(pl.Datetime("us"))
    if t.dtype == pl.Datetime:
        return t.dt.epoch("s")
    if t.dtype.is_numeric():
        num = t.cast(pl.Float64)
    else:
        text = t.cast(pl.String).str.strip_chars()
        num = text.cast(pl.Float64, strict=False)
        iso = text.str.replace(r"[zZ]$", "+00:00").str.replace(" ", "T", literal=True)
        parsed = pl.select(
            pl.coalesce(
                iso.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
                for f in _TIME_FORMATS
            )
        ).to_series()
    out = pl.select(
        pl.when(num.is_nan() | num.is_infinite())
        .then(None)
        .when(num > 1e11)
        .then(num / 1000)
        .otherwise(num)
        .floor()
        .cast(pl.Int64)
    ).to_series()
    if t.dtype.is_numeric():
        return out
    return out.fill_null(parsed.dt.epoch("s"))


def _batch(
    raw: pl.DataFrame, cols: _Columns, name: str, lines: int, consumed: int, rejected: Rejections
) -> RecordBatch:
    """Normalize rows read as text (or Parquet types) into ts, value and labels; count bad rows
    (after those ``rejected`` already holds)."""
    ts = epoch_seconds(raw[cols.time])
    v = raw[cols.value].cast(pl.Float64, strict=False)
    frame = pl.DataFrame({"ts": ts, "value": v}).with_columns(
        raw[c].cast(pl.String).fill_null("-").alias(c) for c in cols.labels
    )
    bad_t = frame["ts"].is_null()
    bad_v = (
        frame["value"].is_null()
        | frame["value"].is_nan()
        | frame["value"].is_infinite()
        | (frame["value"] < 0)
    )
    where = raw[_LINE] if _LINE in raw.columns else None
    for mask, reason in ((bad_t, "unreadable time"), (bad_v & ~bad_t, "non-numeric value")):
        rows = mask.arg_true()
        for r in rows.head(MAX_EXAMPLES).to_list():
            rejected.add(reason, name, None if where is None else int(where[r]))
        if len(rows) > MAX_EXAMPLES:
            rejected.counts[reason] += len(rows) - MAX_EXAMPLES
    frame = frame.filter(~(bad_t | bad_v))
    span = None
    if frame.height:
        span = (int(frame["ts"].min()), int(frame["ts"].max()))  # type: ignore[arg-type]
    return RecordBatch(
        frame=frame,
        source=name,
        values=("value",),
        labels=cols.labels,
        span=span,
        lines=lines,
        rejected=rejected,
        bytes_read=consumed,
    )


# -- CSV and JSON lines: blocks cut at newlines ---------------------------------------------------------
Piece = tuple[pl.DataFrame, int]  # rows read as text with their line numbers, physical lines


class _TextFormat:
    """How one text format reads a block, and a single line when the block has a bad one."""

    def __init__(self, format: str, header: bytes, names: list[str]) -> None:
        self.format = format
        self.header = header
        self.schema = {n: pl.String() for n in names}

    def read(self, data: bytes) -> pl.DataFrame:
        if self.format == "csv":
            return pl.read_csv(self.header + data, schema=self.schema)
        return pl.read_ndjson(data, schema=self.schema)

    def fast(self, block: bytes, first_line: int) -> Piece | None:
        """The block's rows, or None if polars cannot read it or its rows are not its lines."""
        try:
            df = self.read(block)
        except pl.exceptions.PolarsError:
            return None
        n = line_count(block)
        if df.height == n:
            return df.with_columns(pl.int_range(first_line, first_line + n).alias(_LINE)), n
        if self.format != "jsonl":
            return None  # a quoted field spanning lines: read line by line
        # JSON lines skip blank lines: number the rows by the non-blank ones
        numbers = [first_line + i for i, x in enumerate(block.split(b"\n")) if x.strip()]
        if len(numbers) != df.height:
            return None
        return df.with_columns(pl.Series(_LINE, numbers, dtype=pl.Int64)), n

    def careful(self, block: bytes, first_line: int, name: str, rejected: Rejections) -> Piece:
        """Each line of a small piece on its own; a line polars cannot read is counted."""
        rows: list[pl.DataFrame] = []
        lines = block.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for i, line in enumerate(lines):
            if self.format == "jsonl" and not line.strip():
                continue
            try:
                df = (
                    pl.DataFrame([[None] * len(self.schema)], schema=self.schema, orient="row")
                    if self.format == "csv" and not line.rstrip(b"\r")
                    else self.read(line + b"\n")
                )
            except pl.exceptions.PolarsError:
                df = None
            if df is None or df.height != 1:
                rejected.add("malformed line", name, first_line + i)
                continue
            rows.append(df.with_columns(pl.lit(first_line + i, pl.Int64).alias(_LINE)))
        empty = pl.DataFrame(schema={**self.schema, _LINE: pl.Int64()})
        return pl.concat([empty, *rows]), len(lines)


def _csv_header(block: bytes, name: str) -> tuple[bytes, list[str], bytes]:
    nl = block.find(b"\n")
    header, rest = (block, b"") if nl < 0 else (block[: nl + 1], block[nl + 1 :])
    try:
        names = pl.read_csv(header, infer_schema=False, n_rows=0).columns
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"not a readable csv file ({str(exc).splitlines()[0]})", source=name, line=1
        ) from exc
    return header if header.endswith(b"\n") else header + b"\n", names, rest


def _jsonl_first(block: bytes, name: str, first_line: int) -> tuple[list[str], tuple[str, ...]]:
    """Column names and text-valued keys of the block's first non-blank line (none if blank)."""
    for i, line in enumerate(block.split(b"\n"), start=first_line):
        if not line.strip():
            continue
        try:
            first = json.loads(line)
        except ValueError as exc:
            raise InputError(f"not a JSON lines file ({exc})", source=name, line=i) from exc
        if not isinstance(first, dict):
            raise InputError(
                "not a JSON lines file", source=name, line=i, expected="an object per line"
            )
        return list(first), tuple(k for k, v in first.items() if isinstance(v, str))
    return [], ()


def _blank(name: str, lines: int, consumed: int) -> RecordBatch:
    """The batch of a block of blank lines before a JSON lines file's first record."""
    frame = pl.DataFrame(schema={"ts": pl.Int64, "value": pl.Float64})
    return RecordBatch(
        frame=frame, source=name, values=("value",), lines=lines, bytes_read=consumed
    )


def _read_text(
    src: str | Path | bytes, format: str, name: str, block_size: int
) -> Iterator[RecordBatch]:
    reader: _TextFormat | None = None
    cols: _Columns | None = None
    line_no = 1
    for block, consumed in iter_blocks(src, block_size, source=name):
        if reader is None:
            if format == "csv":
                header, names, block = _csv_header(block, name)
                line_no = 2
                texts: tuple[str, ...] = tuple(names)
            else:
                header, (names, texts) = b"", _jsonl_first(block, name, line_no)
                if not names:
                    line_no += line_count(block)
                    yield _blank(name, line_count(block), consumed)
                    continue
            tcol = _pick(names, TIME_COLUMNS, "time", name)
            vcol = _pick(names, VALUE_COLUMNS, "value", name)
            labels = tuple(n for n in names if n not in (tcol, vcol) and n in texts)
            reader, cols = _TextFormat(format, header, names), _Columns(tcol, vcol, labels)
        assert cols is not None
        rejected = Rejections()
        raw, n = split_parse(
            block,
            line_no,
            reader.fast,
            partial(reader.careful, name=name, rejected=rejected),
            lambda p: p[1],
            lambda a, b: (pl.concat([a[0], b[0]]), a[1] + b[1]),
        )
        line_no += n
        yield _batch(raw, cols, name, n, consumed, rejected)


# -- Parquet: record batches ---------------------------------------------------------------------------
def _read_parquet(src: str | Path | bytes, name: str, rows: int) -> Iterator[RecordBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data: str | Path | pa.BufferReader = (
        src
        if not isinstance(src, bytes)
        else pa.BufferReader(gzip.decompress(src) if src[:2] == GZIP_MAGIC else src)
    )
    try:
        # no pre-buffering: by default pyarrow keeps the column chunks it has read
        pf = pq.ParquetFile(data, pre_buffer=False, buffer_size=1 << 20)
        schema = pl.from_arrow(pf.schema_arrow.empty_table())
        assert isinstance(schema, pl.DataFrame)
        names = schema.columns
        tcol = _pick(names, TIME_COLUMNS, "time", name)
        vcol = _pick(names, VALUE_COLUMNS, "value", name)
        labels = tuple(
            n
            for n in names
            if n not in (tcol, vcol) and schema[n].dtype in (pl.String, pl.Categorical)
        )
        cols = _Columns(tcol, vcol, labels)
        for rb in pf.iter_batches(
            batch_size=rows, columns=[tcol, vcol, *labels], use_threads=False
        ):
            raw = pl.from_arrow(rb)
            assert isinstance(raw, pl.DataFrame)
            yield _batch(raw, cols, name, raw.height, 0, Rejections())
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", source=name) from exc
    except (pa.ArrowException, pl.exceptions.PolarsError) as exc:
        raise InputError(
            f"not a readable parquet file ({str(exc).splitlines()[0]})", source=name
        ) from exc


def read_series_file(
    src: str | Path | bytes,
    *,
    format: str = "csv",
    source: str | None = None,
    block_size: int = SERIES_BLOCK,
) -> Iterator[RecordBatch]:
    """Yield the batches of a CSV / JSON lines / Parquet series file, block by block (see the
    module docstring); ``block_size`` is bytes of text, or rows of Parquet divided by 64."""
    name = source or (str(src) if not isinstance(src, bytes) else "<bytes>")
    if format == "parquet":
        yield from _read_parquet(src, name, max(1, block_size // 64))
    else:
        yield from _read_text(src, format, name, block_size)
