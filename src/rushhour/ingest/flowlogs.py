"""AWS VPC flow logs: the default v2 format, custom formats named by a header line, plain or gzip.

Contract: :func:`read_flowlog` yields one :class:`RecordBatch` per block (about 16 MiB of text) with
columns ``ts`` (the record's ``start``), ``requests`` (1 per record), optionally ``packets`` and
``bytes``, and the requested label fields (AWS names, e.g. ``action``, ``dstport``,
``flow-direction``). Only ``log-status OK`` records are traffic; NODATA and SKIPDATA records are
counted in ``nodata``/``skipdata`` and extend the observed ``span`` but add no requests.

Each block is first parsed by polars with an explicit schema (the fast path). Only when polars
rejects the block, or a validation expression finds a bad row, is that block re-parsed line by line
(the careful path), which skips each bad line and counts it by reason with ``file:line`` examples.

>>> data = (b"2 1 eni-a 10.0.0.1 10.0.0.2 443 5000 6 10 840 1000 1060 ACCEPT OK\\n"
...         b"2 1 eni-a - - - - - - - 1000 1060 - NODATA\\n"
...         b"2 1 eni-a 10.0.0.1 10.0.0.2 443 5000 6 10 840 1100 1060 ACCEPT OK\\n")
>>> [b] = read_flowlog(data, labels=["action"])
>>> b.frame.rows(), b.records, b.nodata, dict(b.rejected.counts)
([(1000, 'ACCEPT')], 1, 1, {'start after end': 1})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rushhour.errors import InputError, UsageError
from rushhour.ingest.batch import RecordBatch, Rejections
from rushhour.ingest.blocks import CAREFUL_BELOW, DEFAULT_BLOCK, iter_blocks, split_parse

V2_FIELDS = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
]
V5_FIELDS = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
]
KNOWN_FIELDS = frozenset(
    [
        *V5_FIELDS,
        "ecs-cluster-arn",
        "ecs-cluster-name",
        "ecs-container-instance-arn",
        "ecs-container-instance-id",
        "ecs-container-id",
        "ecs-second-container-id",
        "ecs-service-name",
        "ecs-task-definition-arn",
        "ecs-task-arn",
        "ecs-task-id",
        "reject-reason",
    ]
)
INT_FIELDS = frozenset({"start", "end", "packets", "bytes"})
ACTIONS = ("ACCEPT", "REJECT")
STATUSES = ("OK", "NODATA", "SKIPDATA")
VALUE_FIELDS = ("requests", "packets", "bytes")


@dataclass(frozen=True)
class Layout:
    """Field names of a flow-log format, in order, and whether the input starts with a header."""

    fields: tuple[str, ...]
    header: bool = False

    def index(self, name: str) -> int:
        return self.fields.index(name)

    @classmethod
    def parse(cls, text: str) -> Layout:
        """A layout from a header line or an AWS format string (``${version} ${start} ...``)."""
        names = tuple(t.strip("${}") for t in text.split())
        unknown = [n for n in names if n not in KNOWN_FIELDS]
        if unknown or "start" not in names:
            raise UsageError(
                f"flow-log format names unknown fields {unknown}"
                if unknown
                else "flow-log format lacks the field 'start'",
                hint="write fields as AWS names them, e.g. '${version} ${start} ${end} ${action}'",
            )
        return cls(names)


V2 = Layout(tuple(V2_FIELDS))
V5 = Layout(tuple(V5_FIELDS))


def is_header(line: str) -> bool:
    """True if the line names flow-log fields (S3 deliveries and custom formats start so)."""
    tokens = line.split()
    return bool(tokens) and all(t in KNOWN_FIELDS for t in tokens) and "start" in tokens


def sniff_layout(first_line: str) -> Layout:
    """The layout a file's first line implies: its header, or v2 if it is a 14-field record."""
    if is_header(first_line):
        return Layout(tuple(first_line.split()), header=True)
    return V2


# -- fast path ------------------------------------------------------------------------------------
ACTION_TYPE = pl.Enum(ACTIONS)
STATUS_TYPE = pl.Enum(STATUSES)


def _dtype(name: str) -> pl.DataType:
    """Column type of a field: integers, the two closed vocabularies as enums (an unknown action
    or log-status fails the parse, which sends the block to the careful path), text otherwise."""
    if name in INT_FIELDS:
        return pl.Int64()
    if name == "action":
        return ACTION_TYPE
    if name == "log-status":
        return STATUS_TYPE
    return pl.String()


def _schema(fields: Iterable[str]) -> dict[str, pl.DataType]:
    return {n: _dtype(n) for n in fields}


def _fast(
    block: bytes, layout: Layout, want: list[str], ints: list[str]
) -> tuple[pl.DataFrame, int, int, tuple[int, int] | None, int] | None:
    """Parse a clean block with polars; None if any line needs the careful path.

    Unknown actions and log-statuses already fail the parse (enum columns). What remains to check
    is cheap: null counts are known without a scan, so a block of OK records only (the usual case)
    costs one pass for ``start <= end``; blocks with NODATA/SKIPDATA records check the traffic
    conditions on the OK rows only."""
    cols = [layout.index(n) for n in want]
    try:
        df = pl.read_csv(
            block,  # bytes are read zero-copy
            separator=" ",
            has_header=False,
            schema=_schema(layout.fields),
            columns=cols,
            null_values="-",
            quote_char=None,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError):
        return None
    height = df.height
    needed = ["start", *(["log-status"] if "log-status" in want else [])]
    if any(df[n].null_count() for n in needed):
        return None
    lo, hi = df["start"].min(), df["start"].max()  # NODATA/SKIPDATA records count in the span
    ok_n, nodata = height, 0
    if "log-status" in want:
        status = df["log-status"]
        ok_n, nodata = int(status.eq("OK").sum()), int(status.eq("NODATA").sum())
        if ok_n < height:
            df = df.filter(pl.col("log-status") == "OK")
    traffic = [n for n in (*ints, "action") if n in want and n != "start"]
    if any(df[n].null_count() for n in traffic):
        return None
    if "end" in want and not (df["start"] <= df["end"]).all():
        return None
    span = None if lo is None else (int(lo), int(hi))  # type: ignore[arg-type]
    return df, nodata, height - ok_n - nodata, span, height


# -- careful path ---------------------------------------------------------------------------------
def parse_lines(
    lines: Iterable[str],
    layout: Layout,
    want: list[str],
    ints: list[str],
    source: str,
    first_line: int,
    rejected: Rejections,
) -> tuple[pl.DataFrame, int, int, tuple[int, int] | None, int]:
    """Parse lines one by one, skipping and counting bad ones; returns (frame, nodata, skipdata,
    span, lines seen)."""
    n_fields = len(layout.fields)
    pos = {n: layout.index(n) for n in ("start", "end", "action", "log-status") if n in want}
    idx = [layout.index(n) for n in want]
    i_status = pos.get("log-status")
    i_start = pos["start"]
    i_end = pos.get("end")
    i_action = pos.get("action")
    int_idx = [(n, layout.index(n)) for n in ints]
    columns: list[list[object]] = [[] for _ in want]
    nodata = skipdata = seen = 0
    lo: int | None = None
    hi: int | None = None
    lineno = first_line - 1
    for lineno, raw in enumerate(lines, start=first_line):
        seen += 1
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != n_fields:
            if is_header(raw):
                rejected.add("repeated header line", source, lineno)
            else:
                rejected.add("wrong field count", source, lineno)
            continue
        status = parts[i_status] if i_status is not None else "OK"
        if status not in STATUSES:
            rejected.add("unknown log-status", source, lineno)
            continue
        try:
            start = int(parts[i_start])
        except ValueError:
            rejected.add("non-integer start", source, lineno)
            continue
        if status != "OK":
            nodata += status == "NODATA"
            skipdata += status == "SKIPDATA"
        else:
            bad = None
            vals: dict[str, int] = {}
            for name, i in int_idx:
                try:
                    vals[name] = int(parts[i])
                except ValueError:
                    bad = f"non-integer {name}"
                    break
            if bad is None and i_end is not None and start > vals["end"]:
                bad = "start after end"
            if bad is None and i_action is not None and parts[i_action] not in ACTIONS:
                bad = "unknown action"
            if bad is not None:
                rejected.add(bad, source, lineno)
                continue
            for col, name, i in zip(columns, want, idx, strict=True):
                col.append(vals[name] if name in vals else _str(parts[i]))
        lo = start if lo is None or start < lo else lo
        hi = start if hi is None or start > hi else hi
    frame = pl.DataFrame(dict(zip(want, columns, strict=True)), schema=_schema(want))
    if "log-status" in want:
        frame = frame.filter(pl.col("log-status") == "OK")
    span = None if lo is None or hi is None else (lo, hi)
    return frame, nodata, skipdata, span, seen


def _str(token: str) -> str | None:
    return None if token == "-" else token


Parsed = tuple[pl.DataFrame, int, int, tuple[int, int] | None, int]


def _join(a: Parsed, b: Parsed) -> Parsed:
    spans = [x for x in (a[3], b[3]) if x is not None]
    span = (min(x[0] for x in spans), max(x[1] for x in spans)) if spans else None
    frame = pl.concat([a[0], b[0]], how="vertical_relaxed")
    return frame, a[1] + b[1], a[2] + b[2], span, a[4] + b[4]


def _parse_block(
    block: bytes,
    layout: Layout,
    want: list[str],
    ints: list[str],
    source: str,
    first_line: int,
    rejected: Rejections,
) -> Parsed:
    """Fast path for the block, split in halves around bad lines (see
    :func:`~rushhour.ingest.blocks.split_parse`). polars keeps one row per line (a blank line is a
    null row, which fails validation), so the fast path's height is the block's line count."""
    return split_parse(
        block,
        first_line,
        lambda b, _: _fast(b, layout, want, ints),
        lambda b, line: parse_lines(
            b.decode("utf-8", "replace").splitlines(), layout, want, ints, source, line, rejected
        ),
        lambda r: r[4],
        _join,
        CAREFUL_BELOW,
    )


# -- reader -----------------------------------------------------------------------------------------
def _plan(
    layout: Layout, labels: Sequence[str], values: Sequence[str]
) -> tuple[list[str], list[str]]:
    missing = [n for n in labels if n not in layout.fields]
    bad_values = [v for v in values if v not in VALUE_FIELDS]
    if bad_values:
        raise UsageError(f"unknown flow-log values {bad_values}; choose from {list(VALUE_FIELDS)}")
    if missing:
        raise UsageError(
            f"label field(s) {missing} are not in this flow log's format",
            hint=f"the format has {', '.join(layout.fields)}",
        )
    want_set = {"start", *labels, *(v for v in values if v != "requests")}
    want_set |= {n for n in ("end", "action", "log-status") if n in layout.fields}
    want = [n for n in layout.fields if n in want_set]
    ints = [n for n in want if n in INT_FIELDS]
    return want, ints


def _finish(df: pl.DataFrame, labels: Sequence[str], values: Sequence[str]) -> pl.DataFrame:
    cols: list[pl.Expr] = [pl.col("start").alias("ts")]
    cols += [pl.col(v) for v in values if v != "requests"]
    # "-" (absent) stays "-"; enum labels (action) have no nulls left once validated
    cols += [pl.col(n).fill_null("-") if df[n].null_count() else pl.col(n) for n in labels]
    return df.select(cols)


def read_flowlog(
    src: str | Path | bytes,
    *,
    labels: Sequence[str] = ("action",),
    values: Sequence[str] = ("requests",),
    layout: Layout | None = None,
    block_size: int = DEFAULT_BLOCK,
    source: str | None = None,
) -> Iterator[RecordBatch]:
    """Yield record batches of a flow-log file or bytes (see the module docstring).

    ``layout`` forces a format; by default the first line decides (a header names the fields,
    otherwise the default v2 format). ``values`` picks from requests, packets and bytes.
    """
    name = source or (str(src) if not isinstance(src, bytes) else "<bytes>")
    if "requests" not in values:
        values = ("requests", *values)
    line_no = 1
    want: list[str] = []
    ints: list[str] = []
    for k, (block, consumed) in enumerate(iter_blocks(src, block_size, source=name)):
        if k == 0:
            nl = block.find(b"\n")
            first = block[: nl if nl >= 0 else len(block)].decode("utf-8", "replace")
            if layout is None:
                layout = sniff_layout(first)
            elif is_header(first):
                layout = Layout(layout.fields, header=True)
            want, ints = _plan(layout, labels, values)
            if layout.header or is_header(first):
                block = block[nl + 1 :] if nl >= 0 else b""
                line_no = 2
        assert layout is not None
        rejected = Rejections()
        frame, nodata, skipdata, span, n_lines = _parse_block(
            block, layout, want, ints, name, line_no, rejected
        )
        line_no += n_lines
        yield RecordBatch(
            frame=_finish(frame, labels, values),
            source=name,
            values=tuple(values),
            labels=tuple(labels),
            counted=("requests",),
            span=span,
            lines=n_lines,
            nodata=nodata,
            skipdata=skipdata,
            rejected=rejected,
            bytes_read=consumed,
        )


def records_from_lines(
    lines: Sequence[str],
    *,
    source: str,
    labels: Sequence[str] = ("action",),
    values: Sequence[str] = ("requests",),
    layout: Layout | None = None,
    first_line: int = 1,
) -> RecordBatch:
    """One batch from flow-log lines already in memory (CloudWatch Logs events, HTTP pushes)."""
    if "requests" not in values:
        values = ("requests", *values)
    layout = layout or (sniff_layout(lines[0]) if lines else V2)
    if lines and is_header(lines[0]):
        lines, first_line = lines[1:], first_line + 1
    want, ints = _plan(layout, labels, values)
    rejected = Rejections()
    frame, nodata, skipdata, span, seen = parse_lines(
        lines, layout, want, ints, source, first_line, rejected
    )
    return RecordBatch(
        frame=_finish(frame, labels, values),
        source=source,
        values=tuple(values),
        labels=tuple(labels),
        counted=("requests",),
        span=span,
        lines=seen,
        nodata=nodata,
        skipdata=skipdata,
        rejected=rejected,
    )


def require_layout(text: str | None) -> Layout | None:
    """``v2``, ``v5``, a format string, or None for auto; raises UsageError otherwise."""
    if text is None or text == "auto":
        return None
    if text == "v2":
        return V2
    if text == "v5":
        return V5
    return Layout.parse(text)


def strict_check(batch: RecordBatch) -> None:
    """Raise the first rejection as an InputError (``--strict``)."""
    for reason, examples in batch.rejected.examples.items():
        where = examples[0]
        src, _, line = where.rpartition(":")
        raise InputError(
            reason,
            source=src or where,
            line=int(line) if line.isdigit() else None,
            expected="a well-formed record (or run without --strict to skip and count it)",
        )
