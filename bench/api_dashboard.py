"""How fast the dashboard's queries are at scale: many series, each with weeks of 1-minute data.

For each size ``SERIESxDAYS`` it builds a SQLite store with the project's schema (migrations) where every
series holds ``DAYS`` days of 1-minute buckets, bulk-loaded by SQLite itself (a recursive CTE, in order
of the primary key, one transaction per 500 series), plus, in proportion to the history: one anomaly per
series per day (``anomalies``) and one alert per anomaly delivered to one channel (``alert_outbox``).
Scores are stored for the series whose page is measured (every bucket, one detector). Then it times,
through the real app (TestClient), medians of ``--repeat``:

* ``GET /series?limit=50&sparkline=48``, the first and the last page (status, last bucket, sparkline);
* ``GET /series/{id}/points?resolution=1000`` over the series' whole history (downsampled by the store),
  against its peer: reading the same history raw (``Store.read_buckets``) and serialising it as JSON;
* ``GET /alerts?limit=50`` and ``GET /anomalies?limit=50`` (first pages, newest first); the alerts list
  also once as the process's first call, when it counts every (alert, status) group.

A query whose cost grows with the history length shows up as a time growing with ``DAYS``.
``--alert-sizes`` times the two event lists alone over stores holding only series and events, for
event counts (10,000 series x 30 days) whose buckets would not fit this machine's time.

    python bench/api_dashboard.py --sizes 10000x1 10000x7 2000x30 --alert-sizes 10000x30 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from rushhour.api import create_app
from rushhour.api.alert_store import StoreAlerts
from rushhour.api.auth import TokenGuard
from rushhour.settings import load_settings
from rushhour.store import open_store
from rushhour.timeutil import from_epoch

END = 1_772_000_000 - 1_772_000_000 % 86400
CHUNK = 500
BUCKETS = """
INSERT INTO buckets (series_id, start, value, late_updates)
WITH RECURSIVE m(t) AS (SELECT :t0 UNION ALL SELECT t + 60 FROM m WHERE t + 60 < :t1)
SELECT s.id, m.t, 800 + abs(random() % 400), 0 FROM series AS s CROSS JOIN m
WHERE s.id BETWEEN :lo AND :hi
"""
SCORES = """
INSERT INTO scores (series_id, start, detector, score, expected, deviation)
SELECT series_id, start, 'mean_band', abs(random() % 100) / 100.0, 1000, 120 FROM buckets
WHERE series_id = :sid
"""


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def build(path: Path, n: int, days: int, rng: np.random.Generator) -> int:
    """Fill the store at ``path`` (schema already migrated); returns the number of buckets."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-512000")
    con.executemany(
        "INSERT INTO series (id, key, name, labels, bucket_seconds, created_at) "
        "VALUES (?, ?, 'requests', ?, 60, 0)",
        [
            (i, f"requests{{svc=s{i:05d}}}", json.dumps({"svc": f"s{i:05d}"}))
            for i in range(1, n + 1)
        ],
    )
    con.commit()
    t0 = END - days * 86400
    for lo in range(1, n + 1, CHUNK):
        con.execute(BUCKETS, {"t0": t0, "t1": END, "lo": lo, "hi": min(n, lo + CHUNK - 1)})
        con.commit()
    con.execute(SCORES, {"sid": 1})
    _events(con, n, days, rng)
    con.commit()
    con.close()
    return n * days * 1440


def _events(con: sqlite3.Connection, n: int, days: int, rng: np.random.Generator) -> None:
    """One anomaly per series per day at a random minute, and one delivered alert for each."""
    sids = np.repeat(np.arange(1, n + 1), days)
    day = np.tile(np.arange(days), n)
    starts = END - (day + 1) * 86400 + rng.integers(0, 1440, len(sids)) * 60
    anomalies = [
        (
            int(s),
            int(st),
            "mean_band",
            2400.0,
            1000.0,
            1400.0,
            5.2,
            0.9,
            "up",
            "major",
            int(st) + 60,
        )
        for s, st in zip(sids, starts, strict=True)
    ]
    con.executemany(
        "INSERT INTO anomalies (series_id, start, detector, value, expected, deviation, sigma, score, "
        "direction, severity, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        anomalies,
    )
    outbox = []
    for i, (s, st) in enumerate(zip(sids, starts, strict=True)):
        payload = {
            "status": "firing",
            "group_labels": {"series": f"requests{{svc=s{int(s):05d}}}"},
            "alerts": [
                {
                    "series": f"requests{{svc=s{int(s):05d}}}",
                    "severity": "major",
                    "direction": "up",
                    "starts_at": from_epoch(int(st)).isoformat(),
                    "value": 2400.0,
                    "expected": 1000.0,
                    "summary": "requests 2.4x the expected 1000/min",
                }
            ],
        }
        at = float(st + 60)
        key, body = f"a{i}", json.dumps(payload)
        outbox.append(
            (f"{key}/firing/slack", "slack", key, "firing", body, "sent", 1, at, at, at + 1)
        )
    con.executemany(
        "INSERT INTO alert_outbox (dedupe_key, channel, alert_id, status, payload, state, attempts, "
        "next_attempt_at, created_at, sent_at, lease_until, progress) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '{}')",
        outbox,
    )


def measure_alerts(n: int, days: int, repeat: int) -> dict[str, Any]:
    """The alerts and anomalies lists alone, over ``n`` series' ``days`` days of events (no buckets:
    neither list reads them), for event counts the bucket sizes cannot reach here."""
    tmp = Path(tempfile.mkdtemp(prefix="rushhour-bench-"))
    try:
        settings = load_settings(None, {"data_dir": str(tmp)}, environ={})
        open_store(settings.store_url()).close()
        con = sqlite3.connect(tmp / "rushhour.db")
        con.executemany(
            "INSERT INTO series (id, key, name, labels, bucket_seconds, created_at) "
            "VALUES (?, ?, 'requests', '{}', 60, 0)",
            [(i, f"requests{{svc=s{i:05d}}}") for i in range(1, n + 1)],
        )
        _events(con, n, days, np.random.default_rng(0))
        con.commit()
        con.close()
        store = open_store(settings.store_url())
        app = create_app(settings, store, guard=TokenGuard("x"), alerts=StoreAlerts(store))
        with TestClient(app) as client:

            def get(path: str, **params: Any) -> Callable[[], object]:
                return lambda: client.get(path, params=params).raise_for_status()

            out = {
                "size": f"{n:,} x {days} d, events only",
                "events": n * days,
                "alerts_cold": timed(get("/alerts", limit=50), 1),
                "alerts": timed(get("/alerts", limit=50), repeat),
                "alerts_deep": timed(get("/alerts", limit=50, offset=n * days // 2), repeat),
                "anomalies": timed(get("/anomalies", limit=50), repeat),
            }
        store.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(n: int, days: int, repeat: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="rushhour-bench-"))
    try:
        settings = load_settings(None, {"data_dir": str(tmp)}, environ={})
        open_store(settings.store_url()).close()  # the schema, by the migrations
        started = time.perf_counter()
        rows = build(tmp / "rushhour.db", n, days, np.random.default_rng(0))
        built = time.perf_counter() - started
        size = (tmp / "rushhour.db").stat().st_size
        store = open_store(settings.store_url())
        app = create_app(settings, store, guard=TokenGuard("x"), alerts=StoreAlerts(store))
        client = TestClient(app)

        def get(path: str, **params: Any) -> Callable[[], object]:
            return lambda: client.get(path, params=params).raise_for_status()

        span = {"resolution": 1000, "from": from_epoch(END - days * 86400).isoformat()}
        points = client.get("/series/1/points", params=span).raise_for_status()
        assert len(points.json()["t"]) > 500 and points.json()["expected"][0] is not None

        def raw() -> object:
            s = store.read_buckets(1)
            return json.dumps({"t": (s.index.asi8 // 10**9).tolist(), "v": s.tolist()})

        out = {
            "size": f"{n:,} x {days} d",
            "buckets": rows,
            "db_gb": size / 1e9,
            "built_s": built,
            "first": timed(get("/series", limit=50, sparkline=48), repeat),
            "last": timed(get("/series", limit=50, offset=n - 50, sparkline=48), repeat),
            "points": timed(get("/series/1/points", **span), repeat),
            "points_kib": len(points.content) / 1024,
            "raw": timed(raw, repeat),
            "alerts_cold": timed(get("/alerts", limit=50), 1),
            "alerts": timed(get("/alerts", limit=50), repeat),
            "anomalies": timed(get("/anomalies", limit=50), repeat),
        }
        client.close()
        store.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["10000x1", "10000x7"], help="SERIESxDAYS")
    ap.add_argument(
        "--alert-sizes",
        nargs="*",
        default=[],
        help="SERIESxDAYS of events alone (alerts, anomalies)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    results = []
    for size in args.sizes:
        n, days = (int(x) for x in size.split("x"))
        r = measure(n, days, args.repeat)
        results.append(r)
        print(
            f"{r['size']}: {r['buckets']:,} buckets, {r['db_gb']:.1f} GB, built in {r['built_s']:.0f} s",
            flush=True,
        )
    ms = [
        ("series list, first page of 50 with sparklines", "first"),
        ("series list, last page of 50 with sparklines", "last"),
        ("one series' whole history at resolution 1000", "points"),
        ("peer: the same history read raw and serialised", "raw"),
        ("alerts list, first page of 50, the process's first call", "alerts_cold"),
        ("alerts list, first page of 50", "alerts"),
        ("anomalies list, first page of 50", "anomalies"),
    ]
    sizes = " | ".join(r["size"] for r in results)
    print(f"| request (ms, median of {args.repeat}) | {sizes} |")
    print("|---|" + "---|" * len(results))
    for label, key in ms:
        print(f"| {label} | " + " | ".join(f"{r[key] * 1000:.1f}" for r in results) + " |")
    print(
        "| ratio raw / downsampled | "
        + " | ".join(f"{r['raw'] / r['points']:.1f}x" for r in results)
        + " |"
    )
    print(
        "| points answer size | " + " | ".join(f"{r['points_kib']:.0f} KiB" for r in results) + " |"
    )
    for size in args.alert_sizes:
        n, days = (int(x) for x in size.split("x"))
        a = measure_alerts(n, days, args.repeat)
        print(
            f"{a['size']} ({a['events']:,} anomalies and alerts): alerts first page "
            f"{a['alerts'] * 1000:.1f} ms (the process's first call, which counts every group: "
            f"{a['alerts_cold'] * 1000:.1f} ms), alerts page at offset {a['events'] // 2:,} "
            f"{a['alerts_deep'] * 1000:.1f} ms, anomalies first page {a['anomalies'] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
