"""Turn generated counts into the raw inputs users bring: flow logs, subscription payloads, metric
dumps and plain series files. The inverse of the readers, used by ``rushhour generate --format``.

Flow logs get exactly ``counts[i]`` OK records whose ``start`` lies in bucket ``i`` (about 4% are
REJECT), plus one NODATA record per hour, so ingesting them with no labels reproduces the counts
exactly. Metric dumps sample at irregular 4-6 minute intervals: each datapoint's ``SampleCount`` is
the sum of the counts from its ``Timestamp`` to the next one, split into 2xx, 4xx and 5xx series.

>>> import numpy as np
>>> blocks = list(flowlog_blocks(np.array([0, 60]), np.array([2, 1]), 60, seed=1))
>>> lines = b"".join(blocks).decode().splitlines()
>>> len(lines), sum(l.endswith(" OK") for l in lines)
(4, 3)
"""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl

from rushhour.ingest.flowlogs import V2_FIELDS, V5_FIELDS

FLOW_FORMATS = ("flowlog", "flowlog-v5", "cloudwatch-subscription")


def _records(
    starts: np.ndarray, counts: np.ndarray, width: int, rng: np.random.Generator, v5: bool
) -> pl.DataFrame:
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    start = np.repeat(np.asarray(starts, dtype=np.int64), counts) + rng.integers(0, width, n)
    order = np.argsort(start, kind="stable")
    start = start[order]
    cols: dict[str, object] = {
        "version": np.full(n, 5 if v5 else 2),
        "account-id": np.full(n, 123456789010),
        "interface-id": rng.choice(["eni-0a1b2c3d4e5f60718", "eni-0f9e8d7c6b5a43210"], n),
        "srcaddr": [
            f"10.0.{a}.{b}"
            for a, b in zip(
                rng.integers(0, 256, n).tolist(), rng.integers(1, 255, n).tolist(), strict=True
            )
        ],
        "dstaddr": np.full(n, "10.1.0.20"),
        "srcport": rng.integers(1024, 65535, n),
        "dstport": rng.choice([443, 80], n, p=[0.9, 0.1]),
        "protocol": np.full(n, 6),
        "packets": rng.integers(2, 40, n),
        "bytes": rng.integers(120, 60000, n),
        "start": start,
        "end": start + rng.integers(1, 60, n),
        "action": np.where(rng.random(n) < 0.04, "REJECT", "ACCEPT"),
        "log-status": np.full(n, "OK"),
    }
    df = pl.DataFrame(cols)
    if v5:
        extra = {
            "vpc-id": "vpc-0abc1234",
            "subnet-id": "subnet-0abc1234",
            "instance-id": "i-0abc12345678",
            "tcp-flags": "19",
            "type": "IPv4",
            "pkt-srcaddr": None,
            "pkt-dstaddr": "10.1.0.20",
            "region": "eu-central-1",
            "az-id": "euc1-az2",
            "sublocation-type": "-",
            "sublocation-id": "-",
            "pkt-src-aws-service": "-",
            "pkt-dst-aws-service": "-",
            "flow-direction": "ingress",
            "traffic-path": "-",
        }
        df = df.with_columns(
            *(
                pl.col("srcaddr").alias(k) if v is None else pl.lit(v).alias(k)
                for k, v in extra.items()
            )
        )
    return df.select(V5_FIELDS if v5 else V2_FIELDS).cast(pl.String)


def _nodata(starts: np.ndarray, width: int, v5: bool) -> pl.DataFrame:
    fields = V5_FIELDS if v5 else V2_FIELDS
    hours = [int(s) for s in starts if int(s) % 3600 < width]
    rows = {f: ["-"] * len(hours) for f in fields}
    rows["version"] = ["5" if v5 else "2"] * len(hours)
    rows["account-id"] = ["123456789010"] * len(hours)
    rows["interface-id"] = ["eni-0c0ffee0c0ffee000"] * len(hours)
    rows["start"] = [str(h) for h in hours]
    rows["end"] = [str(h + 60) for h in hours]
    rows["log-status"] = ["NODATA"] * len(hours)
    return pl.DataFrame(rows, schema={f: pl.String for f in fields})


def flowlog_blocks(
    starts: np.ndarray,
    counts: np.ndarray,
    width: int,
    *,
    seed: int = 0,
    v5: bool = False,
    chunk: int = 1440,
) -> Iterator[bytes]:
    """Flow-log text in blocks of ``chunk`` buckets (bounded memory). v5 starts with a header."""
    rng = np.random.default_rng(seed)
    if v5:
        yield (" ".join(V5_FIELDS) + "\n").encode()
    for i in range(0, len(starts), chunk):
        s, c = starts[i : i + chunk], counts[i : i + chunk]
        df = pl.concat([_records(s, c, width, rng, v5), _nodata(s, width, v5)])
        buf = io.BytesIO()
        df.write_csv(buf, separator=" ", include_header=False, quote_style="never")
        yield buf.getvalue()


def subscription_lines(
    starts: np.ndarray, counts: np.ndarray, width: int, *, seed: int = 0, per_payload: int = 5000
) -> Iterator[bytes]:
    """One base64 gzip CloudWatch Logs payload per line; the first is a CONTROL_MESSAGE."""
    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": 0,
                "message": "CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.",
            }
        ],
    }
    yield base64.b64encode(gzip.compress(json.dumps(control).encode(), 1)) + b"\n"
    k = 0
    for block in flowlog_blocks(starts, counts, width, seed=seed):
        lines = block.decode().splitlines()
        for i in range(0, len(lines), per_payload):
            events = []
            for line in lines[i : i + per_payload]:
                k += 1
                events.append(
                    {"id": str(k), "timestamp": int(line.split()[10]) * 1000, "message": line}
                )
            msg = {
                "messageType": "DATA_MESSAGE",
                "owner": "123456789010",
                "logGroup": "vpc-flow-logs",
                "logStream": "eni-0a1b2c3d4e5f60718-all",
                "subscriptionFilters": ["rushhour"],
                "logEvents": events,
            }
            yield base64.b64encode(gzip.compress(json.dumps(msg).encode(), 1)) + b"\n"


def metrics_dump(
    starts: np.ndarray, counts: np.ndarray, width: int, *, seed: int = 0, tz: str = "UTC"
) -> str:
    """The seed's ``output-mass.json`` (Python repr) with irregular 4-6 minute datapoints."""
    rng = np.random.default_rng(seed)
    starts = np.asarray(starts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    t0, t_end = int(starts[0]), int(starts[-1]) + width
    edges = [t0]
    while edges[-1] < t_end:
        edges.append(edges[-1] + int(rng.choice([240, 300, 360], p=[0.25, 0.5, 0.25])))
    edges[-1] = min(edges[-1], t_end)
    e = np.array(edges)
    failed4 = rng.binomial(counts, 0.025)
    failed5 = rng.binomial(counts - failed4, 0.005)
    ok = counts - failed4 - failed5
    which = np.searchsorted(e, starts, side="right") - 1
    zi = ZoneInfo(tz)
    out = []
    for name, c in (
        ("response-code-2xx", ok),
        ("response-code-4xx", failed4),
        ("response-code-5xx", failed5),
    ):
        sums = np.bincount(which, weights=c, minlength=len(e) - 1)[: len(e) - 1]
        pts = []
        for t, v in zip(e[:-1].tolist(), sums.tolist(), strict=True):
            d = datetime.fromtimestamp(t, zi)
            pts.append(
                f"{{'Timestamp': datetime.datetime({d.year}, {d.month}, {d.day}, {d.hour}, {d.minute}{', ' + str(d.second) if d.second else ''}, tzinfo=tzlocal()), "
                f"'SampleCount': {float(v)!r}, 'Unit': 'None'}}"
            )
        out.append(
            f"'{name}': {{'Label': '{name}', 'Datapoints': [\n    "
            + ",\n    ".join(pts)
            + "],\n  'ResponseMetadata': {'HTTPStatusCode': 200}}"
        )
    return "{" + ",\n ".join(out) + "}\n"


OUTPUT_FORMATS = (
    "csv",
    "jsonl",
    "parquet",
    "flowlog",
    "flowlog-v5",
    "cloudwatch-subscription",
    "metrics",
)


def write_generated(
    frame: pd.DataFrame,
    path: Path,
    format: str,
    *,
    width: int,
    seed: int = 0,
    tz: str = "UTC",
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Write generated counts (``frame``: UTC index, ``value`` column) in ``format``. A path ending
    in ``.gz`` is gzip-compressed. Flow logs are written a day at a time (bounded memory)."""
    starts = np.asarray(pd.DatetimeIndex(frame.index).as_unit("s").asi8, dtype=np.int64)
    counts = frame["value"].to_numpy().astype(np.int64)
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    if format in ("csv", "jsonl", "parquet"):
        df = pl.DataFrame(
            {
                "timestamp": [
                    datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    for t in starts
                ],
                "value": counts,
            }
        )
        if format == "csv":
            df.write_csv(path)
        elif format == "jsonl":
            df.write_ndjson(path)
        else:
            df.write_parquet(path)
        return
    if format == "metrics":
        with opener(path, "wt") as fh:
            fh.write(metrics_dump(starts, counts, width, seed=seed, tz=tz))
        return
    day = max(1, 86400 // width)
    gen = (
        subscription_lines(starts, counts, width, seed=seed)
        if format == "cloudwatch-subscription"
        else flowlog_blocks(starts, counts, width, seed=seed, v5=format == "flowlog-v5", chunk=day)
    )
    done = 0
    with opener(path, "wb") as fh:
        for block in gen:
            fh.write(block)
            if on_progress is not None and format != "cloudwatch-subscription":
                done = min(done + day, len(starts))
                on_progress(done)
