"""Pick the reader of an input: ``read_records(src, format="auto")`` is the one entry point.

Formats: ``flowlog`` (v2 or any header-named custom format), ``cloudwatch-subscription``,
``metrics`` (repr dump or CloudWatch JSON), ``csv``, ``jsonl``, ``parquet``. ``auto`` looks at the
name and the first bytes (after gzip): Parquet magic, a flow-log header or 14-field v2 record,
``{'`` or ``datetime.datetime(`` of a repr dump, CloudWatch JSON keys, subscription JSON or base64
gzip, a ``{`` per line for JSON lines, otherwise CSV with a header naming a time column.

>>> detect_format(b"2 1 eni-a 1.1.1.1 2.2.2.2 1 2 6 3 90 60 120 ACCEPT OK\\n")
'flowlog'
>>> detect_format(b"{'response-code-2xx': {'Datapoints': []}}")
'metrics'
>>> detect_format(b"timestamp,value\\n2026-01-01T00:00:00Z,3\\n")
'csv'
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from rushhour.errors import InputError, UsageError
from rushhour.ingest.batch import RecordBatch
from rushhour.ingest.blocks import read_head
from rushhour.ingest.cloudwatch_logs import read_subscription
from rushhour.ingest.flowlogs import V2_FIELDS, Layout, is_header, read_flowlog
from rushhour.ingest.metrics import read_metrics
from rushhour.ingest.series_files import read_series_file

FORMATS = ("auto", "flowlog", "cloudwatch-subscription", "metrics", "csv", "jsonl", "parquet")
_B64_GZIP = re.compile(rb"^H4sI[A-Za-z0-9+/=]+$")


def detect_format(head: bytes, name: str = "") -> str:
    """The format of content starting with ``head`` (decompressed) and named ``name``."""
    lower = name.lower()
    if head[:4] == b"PAR1" or lower.endswith(".parquet"):
        return "parquet"
    text = head.decode("utf-8", "replace")
    stripped = text.lstrip()
    first = stripped.split("\n", 1)[0].strip()
    if is_header(first):
        return "flowlog"
    tokens = first.split()
    if len(tokens) == len(V2_FIELDS) and tokens[0].isdigit():
        return "flowlog"
    if _B64_GZIP.match(first.encode()) or '"logEvents"' in text or '"messageType"' in text:
        return "cloudwatch-subscription"
    if (
        stripped.startswith("{'")
        or "datetime.datetime(" in text
        or '"Datapoints"' in text
        or '"MetricDataResults"' in text
    ):
        return "metrics"
    if stripped.startswith("{") and (
        lower.endswith((".jsonl", ".ndjson", ".jsonl.gz")) or "}\n{" in text.replace("\r", "")
    ):
        return "jsonl"
    if stripped.startswith("{"):
        return "metrics"
    if "," in first:
        return "csv"
    raise InputError(
        "cannot tell the format of this input",
        source=name or None,
        expected="a flow log, CloudWatch subscription payloads, a metrics dump, CSV, JSON lines or Parquet (or pass --format)",
    )


def read_records(
    src: str | Path | bytes,
    *,
    format: str = "auto",
    labels: Sequence[str] | None = None,
    values: Sequence[str] = ("requests",),
    layout: Layout | None = None,
    tz: str = "UTC",
    block_size: int | None = None,
    source: str | None = None,
) -> Iterator[RecordBatch]:
    """Record batches of one input in any supported format (see the module docstring).

    ``labels`` and ``values`` apply to flow logs (default labels: ``action``); ``tz`` resolves
    ``tzlocal()`` in metric dumps and naive times.
    """
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}", hint=f"choose from {', '.join(FORMATS)}")
    name = source or (str(src) if not isinstance(src, bytes) else "<bytes>")
    if not isinstance(src, bytes):
        path = Path(src)
        if not path.exists():
            raise InputError("no such file", source=name)
        if path.is_dir():
            raise InputError("is a directory, not a file", source=name)
    if format == "auto":
        if isinstance(src, bytes) or not str(src).lower().endswith(".parquet"):
            head = read_head(src, 64 << 10)
        else:
            head = b"PAR1"
        if not head.strip():
            raise InputError("file is empty", source=name)
        format = detect_format(head, name)
    kw = {} if block_size is None else {"block_size": block_size}
    if format == "flowlog":
        yield from read_flowlog(
            src,
            labels=labels if labels is not None else ("action",),
            values=values,
            layout=layout,
            source=name,
            **kw,
        )
    elif format == "cloudwatch-subscription":
        yield from read_subscription(
            src,
            labels=labels if labels is not None else ("action",),
            values=values,
            layout=layout,
            source=name,
        )
    elif format == "metrics":
        yield from read_metrics(src, tz=tz, source=name)
    else:
        yield from read_series_file(src, format=format, source=name, **kw)
