"""CloudWatch metric dumps: the seed's Python-repr ``output-mass.json`` and AWS JSON responses.

The repr dump (``{'response-code-4xx': {'Datapoints': [{'Timestamp': datetime.datetime(2018, 12,
15, 11, 20, tzinfo=tzlocal()), 'SampleCount': 6.0, 'Unit': 'None'}]}}``) is read with
:func:`safe_literal`: the text is parsed by :mod:`ast` and only literal nodes plus the two calls
``datetime.datetime(...)`` and ``tzlocal()`` are evaluated. Nothing is ever executed; any other
node (a name, an attribute, another call such as ``__import__('os').system(...)``) is rejected with
the line it is on. ``tzlocal()`` means the zone of the machine that wrote the dump, which is
configurable (``tz``; UTC by default).

GetMetricStatistics (``{"Label": ..., "Datapoints": [...]}``) and GetMetricData
(``{"MetricDataResults": [{"Id", "Label", "Timestamps", "Values"}]}``) JSON are read too.

Each datapoint counts the requests of the period that starts at its ``Timestamp``. Because the seed's
samples came every 4, 5 or 6 minutes, a datapoint's period runs to the next datapoint of the same
series (the last one gets the series' median spacing); a spacing longer than ``max_gap_factor`` times
the median is a hole in the data, so that datapoint keeps the median period and the rest is missing.
The batch's ``duration`` column lets the Bucketizer spread each count over its period: the total is
preserved. Series names containing ``2xx`` get ``status=ok``; ``4xx``/``5xx`` get ``status=failed``.

>>> text = "{'response-code-4xx': {'Datapoints': [{'Timestamp': datetime.datetime(2018, 12, 15, 11, 20, tzinfo=tzlocal()), 'SampleCount': 6.0, 'Unit': 'None'}]}}"
>>> [b] = read_metrics(text.encode(), source="m")
>>> b.frame.rows()
[(1544872800, 300, 6.0, 'response-code-4xx', 'failed')]
>>> safe_literal("__import__('os').system('echo hi')")
Traceback (most recent call last):
...
rushhour.errors.InputError: <text>:1: call of "__import__('os').system" is not allowed (expected only literals, datetime.datetime(...) and tzlocal())
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rushhour.errors import InputError
from rushhour.ingest.batch import RecordBatch, Rejections
from rushhour.ingest.dump_stream import MARK
from rushhour.timeutil import zone

STATISTICS = ("SampleCount", "Sum", "Average", "Maximum", "Minimum")
DEFAULT_PERIOD = 300
_EXPECTED = "only literals, datetime.datetime(...) and tzlocal()"


def status_of(name: str) -> str:
    """``ok`` for 2xx series, ``failed`` for 4xx/5xx, ``-`` otherwise.

    >>> status_of("response-code-5xx"), status_of("response-code-200"), status_of("latency")
    ('failed', 'ok', '-')
    """
    if re.search(r"[45](xx|\d\d)", name, re.I):
        return "failed"
    if re.search(r"2(xx|\d\d)", name, re.I):
        return "ok"
    return "-"


class _Literal:
    """Evaluate an ast of literals and the two whitelisted calls; never anything else."""

    def __init__(self, tz: tzinfo, source: str) -> None:
        self.tz = tz
        self.source = source

    def fail(self, node: ast.AST, what: str) -> InputError:
        return InputError(
            what, source=self.source, line=getattr(node, "lineno", None), expected=_EXPECTED
        )

    def __call__(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise self.fail(node, "dict unpacking is not allowed")
            return {
                self(k): self(v)
                for k, v in zip(node.keys, node.values, strict=True)
                if k is not None
            }
        if isinstance(node, ast.List | ast.Tuple):
            return [self(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = self(node.operand)
            if not isinstance(v, int | float):
                raise self.fail(node, "a sign on a non-number")
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"{type(node).__name__} is not allowed")

    def call(self, node: ast.Call) -> Any:
        f = node.func
        name = ast.unparse(f) if isinstance(f, ast.Name | ast.Attribute) else type(f).__name__
        if (
            name in ("tzlocal", "dateutil.tz.tzlocal", "tz.tzlocal")
            and not node.args
            and not node.keywords
        ):
            return self.tz
        if (
            name in ("tzutc", "dateutil.tz.tzutc", "tz.tzutc")
            and not node.args
            and not node.keywords
        ):
            return UTC
        if name in ("datetime.datetime", "datetime"):
            args = [self(a) for a in node.args]
            kwargs = {k.arg: self(k.value) for k in node.keywords if k.arg}
            if not all(isinstance(a, int) for a in args) or len(args) > 7:
                raise self.fail(node, "datetime.datetime takes whole-number fields")
            if set(kwargs) - {"tzinfo", "microsecond", "second", "minute", "hour"}:
                raise self.fail(node, f"datetime.datetime keyword(s) {sorted(kwargs)} not allowed")
            try:
                return datetime(*args, **kwargs)
            except (TypeError, ValueError) as exc:
                raise self.fail(node, f"invalid datetime ({exc})") from exc
        raise self.fail(node, f"call of {name!r} is not allowed")


def safe_literal(text: str, *, tz: str | tzinfo = "UTC", source: str = "<text>") -> Any:
    """Parse a Python-repr dump safely (see the module docstring)."""
    zi = zone(tz) if isinstance(tz, str) else tz
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InputError(
            f"not a Python-repr or JSON metrics dump ({exc.msg})",
            source=source,
            line=exc.lineno,
            expected=_EXPECTED,
        ) from exc
    return _Literal(zi, source)(tree.body)


def _ts(value: Any, tz: tzinfo) -> int | None:
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=tz)).timestamp())
    if isinstance(value, str):
        try:
            d = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int((d if d.tzinfo else d.replace(tzinfo=tz)).timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value / 1000 if value > 1e11 else value)
    return None


def _collect(node: Any, path: str, out: dict[str, list[Any]]) -> None:
    """Find every ``Datapoints`` list and ``MetricDataResults`` entry, keyed by series name."""
    if isinstance(node, dict):
        if isinstance(node.get("Datapoints"), list):
            name = path or str(node.get("Label") or "requests")
            out.setdefault(name, []).extend(node["Datapoints"])
        if isinstance(node.get("MetricDataResults"), list):
            for r in node["MetricDataResults"]:
                if isinstance(r, dict):
                    name = str(r.get("Label") or r.get("Id") or path or "requests")
                    pts = [
                        {"Timestamp": t, "Value": v}
                        for t, v in zip(r.get("Timestamps", []), r.get("Values", []), strict=False)
                    ]
                    out.setdefault(name, []).extend(pts)
        for k, v in node.items():
            if k not in ("Datapoints", "MetricDataResults"):
                _collect(v, str(k) if isinstance(k, str) and not path else path, out)
    elif isinstance(node, list):
        for v in node:
            _collect(v, path, out)


def periods(
    ts: np.ndarray, *, max_gap_factor: float = 3.0, default: int = DEFAULT_PERIOD
) -> np.ndarray:
    """Period of each sorted sample: up to the next sample, or the median spacing at the end and
    across holes longer than ``max_gap_factor`` medians.

    >>> periods(np.array([0, 240, 540, 900, 5000])).tolist()
    [240, 300, 360, 330, 330]
    """
    if len(ts) < 2:
        return np.full(len(ts), default, dtype=np.int64)
    gaps = np.diff(ts)
    med = int(np.median(gaps[gaps > 0])) if (gaps > 0).any() else default
    out = np.append(gaps, med).astype(np.int64)
    out[out > max_gap_factor * med] = med
    return out


def read_point(p: Any, tz: tzinfo, statistic: str | None) -> tuple[int, float] | str:
    """``(epoch, value)`` of one datapoint, or the reason it is rejected."""
    if not isinstance(p, dict):
        return "datapoint is not a mapping"
    t = _ts(p.get("Timestamp"), tz)
    stat = statistic or next((s for s in ("Value", *STATISTICS) if s in p), None)
    v = p.get(stat) if stat else None
    if t is None:
        return "missing or unreadable Timestamp"
    if isinstance(v, bool) or not isinstance(v, int | float) or v != v or v < 0:
        return f"missing or invalid {statistic or 'value'}"
    return t, float(v)


def datapoints_batch(
    points: dict[str, list[Any]],
    *,
    source: str,
    tz: tzinfo,
    statistic: str | None = None,
    max_gap_factor: float = 3.0,
    rejected: Rejections | None = None,
) -> RecordBatch:
    """One batch (columns ts, duration, requests, metric, status) from datapoints by series name;
    a datapoint is a mapping or an already read ``(epoch, value)`` pair. Rejections are added to
    ``rejected`` (a new one by default)."""
    rejected = rejected if rejected is not None else Rejections()
    frames = []
    for name, pts in points.items():
        rows: dict[int, float] = {}
        for p in pts:
            got = p if isinstance(p, tuple) else read_point(p, tz, statistic)
            if isinstance(got, str):
                rejected.add(got, source, None)
            elif got[0] in rows:
                rejected.add("duplicate datapoint", source, None)
            else:
                rows[got[0]] = got[1]
        if not rows:
            continue
        ts = np.array(sorted(rows), dtype=np.int64)
        frames.append(
            pl.DataFrame(
                {
                    "ts": ts,
                    "duration": periods(ts, max_gap_factor=max_gap_factor),
                    "requests": np.array([rows[t] for t in ts.tolist()]),
                    "metric": [name] * len(ts),
                    "status": [status_of(name)] * len(ts),
                }
            )
        )
    schema = {
        "ts": pl.Int64,
        "duration": pl.Int64,
        "requests": pl.Float64,
        "metric": pl.String,
        "status": pl.String,
    }
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    span = None
    if frame.height:
        ends = (frame["ts"] + frame["duration"]).to_numpy()
        span = (int(frame["ts"].to_numpy().min()), int(ends.max()) - 1)
    return RecordBatch(
        frame=frame,
        source=source,
        values=("requests",),
        labels=("metric", "status"),
        span=span,
        lines=frame.height + rejected.total,
        rejected=rejected,
    )


_MARK = re.compile(MARK.format(r"(\d+)"))  # the skeleton's Datapoints markers


def _replace_marks(node: Any, lists: list[list[tuple[int, float]]]) -> Any:
    """The skeleton with each Datapoints marker replaced by its list's ``(epoch, value)`` pairs."""
    if isinstance(node, dict):
        return {k: _replace_marks(v, lists) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_marks(v, lists) for v in node]
    if isinstance(node, str) and (m := _MARK.fullmatch(node)):
        return lists[int(m.group(1))]
    return node


def read_metrics(
    src: str | Path | bytes,
    *,
    tz: str = "UTC",
    statistic: str | None = None,
    source: str | None = None,
    max_gap_factor: float = 3.0,
    chunk_size: int = 1 << 20,
) -> Iterator[RecordBatch]:
    """Yield the batch of a metrics dump (repr or JSON, plain or gzip), read ``chunk_size`` bytes
    at a time: see :mod:`rushhour.ingest.dump_stream`. Memory holds one ``(epoch, value)`` pair
    per datapoint, not the text."""
    import codecs

    from rushhour.ingest.blocks import iter_chunks
    from rushhour.ingest.dump_stream import DumpScanner

    name = source or (str(src) if not isinstance(src, bytes) else "<bytes>")
    zi = zone(tz)
    rejected = Rejections()
    lists: list[list[tuple[int, float]]] = []

    def on_point(k: int, p: Any) -> None:
        while len(lists) <= k:
            lists.append([])
        got = read_point(p, zi, statistic)
        if isinstance(got, str):
            rejected.add(got, name, None)
        else:
            lists[k].append(got)

    scanner = DumpScanner(on_point, tz=zi, source=name)
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = 0
    try:
        for piece, at in iter_chunks(src, chunk_size, source=name):
            scanner.feed(decoder.decode(piece))
            consumed = max(consumed, at)
        scanner.feed(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise InputError("metrics file is not UTF-8 text", source=name) from exc
    scanner.finish()
    while len(lists) < scanner.lists:
        lists.append([])
    data = _replace_marks(scanner.skeleton(), lists)
    points: dict[str, list[Any]] = {}
    _collect(data, "", points)
    if not points:
        raise InputError(
            "no Datapoints or MetricDataResults found",
            source=name,
            expected="a GetMetricStatistics/GetMetricData response or the output-mass.json dump",
        )
    batch = datapoints_batch(
        points,
        source=name,
        tz=zi,
        statistic=statistic,
        max_gap_factor=max_gap_factor,
        rejected=rejected,
    )
    batch.bytes_read = consumed
    yield batch
