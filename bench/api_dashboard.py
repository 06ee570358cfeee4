"""How fast the dashboard's queries are at scale: many series, a month of 1-minute data.

Builds a SQLite store with ``--series`` series holding ``--hours`` of 1-minute buckets each, plus one
series holding ``--days`` days, then times, through the real app (TestClient):

* ``GET /series?limit=50&sparkline=48`` (one page of the series list, with sparklines), first and last page;
* ``GET /series/{id}/points?resolution=1000`` over the whole month (downsampled by the store),
  against its peer: reading the same month raw (``Store.read_buckets``) and serialising it as JSON.

    python bench/api_dashboard.py --series 10000 --hours 2 --days 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import insert

from rushhour.api import create_app
from rushhour.api.auth import TokenGuard
from rushhour.settings import load_settings
from rushhour.store import open_store
from rushhour.store import schema as t


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=2)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    settings = load_settings(None, {"data_dir": str(tmp)}, environ={})
    store = open_store(settings.store_url())
    end = 1_772_000_000 - 1_772_000_000 % 86400
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    with store.begin() as tx:
        tx.execute(
            insert(t.series),
            [
                {
                    "key": f"requests{{svc=s{i:05d}}}",
                    "name": "requests",
                    "labels": json.dumps({"svc": f"s{i:05d}"}),
                    "bucket_seconds": 60,
                    "created_at": 0,
                }
                for i in range(1, args.series + 1)
            ],
        )
        n = args.hours * 60
        starts = np.arange(end - n * 60, end, 60)
        for sid in range(1, args.series + 1):
            vals = rng.poisson(1000, n)
            tx.execute(
                insert(t.buckets),
                [
                    {"series_id": sid, "start": int(s), "value": float(v)}
                    for s, v in zip(starts, vals, strict=True)
                ],
            )
        month = np.arange(end - args.days * 86400, end, 60)
        vals = rng.poisson(1000, len(month))
        tx.execute(
            insert(t.buckets).prefix_with("OR REPLACE"),
            [
                {"series_id": 1, "start": int(s), "value": float(v)}
                for s, v in zip(month, vals, strict=True)
            ],
        )
    rows = args.series * args.hours * 60 + len(month)
    print(
        f"store: {args.series:,} series, {rows:,} buckets, built in {time.perf_counter() - started:.1f} s"
    )
    client = TestClient(create_app(settings, store, guard=TokenGuard("x")))
    last_offset = max(0, args.series - 50)

    def page(offset: int) -> Callable[[], object]:
        return lambda: client.get(
            "/series", params={"limit": 50, "offset": offset, "sparkline": 48}
        ).raise_for_status()

    from rushhour.timeutil import from_epoch

    span = {
        "resolution": 1000,
        "from": from_epoch(end - args.days * 86400).isoformat().replace("+00:00", "Z"),
    }

    def down() -> object:
        r = client.get("/series/1/points", params=span)
        assert len(r.raise_for_status().json()["t"]) > 900
        return r

    def raw() -> object:
        s = store.read_buckets(1)
        return json.dumps({"t": (s.index.asi8 // 10**9).tolist(), "v": s.tolist()})

    first = timed(page(0), args.repeat)
    last = timed(page(last_offset), args.repeat)
    d = timed(down, args.repeat)
    r = timed(raw, args.repeat)
    size = len(client.get("/series/1/points", params=span).content)
    print(f"series list, first page of 50 with sparklines: {first * 1000:.1f} ms")
    print(f"series list, last page of 50 with sparklines:  {last * 1000:.1f} ms")
    print(
        f"month of one series, downsampled to <=1000 points by the store: {d * 1000:.1f} ms, {size / 1024:.0f} KiB"
    )
    print(
        f"peer: the same month read raw and serialised: {r * 1000:.1f} ms ({len(month):,} points)"
    )
    print(f"ratio raw / downsampled: {r / d:.2f}x")


if __name__ == "__main__":
    main()
