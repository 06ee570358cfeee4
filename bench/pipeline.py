"""Live pipeline benchmark: many series at 1-minute buckets through the real processor and store.

Simulates ``--minutes`` minutes of live traffic for ``--series`` series (one point batch per minute
holding every series' records for that minute), each series with its own trained Mean Predictor band.
Reports CPU time per simulated minute (headroom = 60 s / that), resident memory per series, and the
latency from a bucket's close (the batch that moves the watermark past its end arrives) to its
scores and anomalies being committed, p50/p99.

Peers measured in the same run, for ratios: a bare SQLite executemany of the same bucket rows (the
store's floor), and the bucketizer alone.

Which detector decides is printed: the band without ``--default``; with it, the default detector
(``detect.alert_by = "default"``, the shipped setting), whose flags are stored as anomalies.
``--notify`` also feeds every decision to a notifier (M-of-N, episodes, cooldown; no channels, so
nothing is delivered), as ``rushhour run`` does, and commits its state with each batch.

    python bench/pipeline.py --series 10000 --minutes 30
    python bench/pipeline.py --series 10000 --minutes 30 --default --notify
    python bench/pipeline.py --series 10000 --minutes 3 --rcf --default --rcf-history 100000
    python bench/pipeline.py --series 10000 --minutes 10 --rcf --rcf-own-level

``--rcf-history N`` measures the forests' memory at their steady state: their point store grows with
the history they sample (``detect.rcf_time_decay``) until it settles after several decays, and
learning that many buckets for every series would take hours, so every series' forest is a copy of
one of a few forests aged that long (scores are then alike across series; the memory is each
forest's own). ``--rcf-own-level`` ages one forest per traffic level instead (17 levels; with
``--rcf-history`` 0, 300 buckets of the template's rhythm at that level), so that every series'
forest has learned traffic at its own level; without it, forests learned one level and most
series' live buckets are far from it. Copied forests are adopted (``DetectorBank.adopt_forest``)
before the live minutes, so no measured batch pays for registering them.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import resource
import sqlite3
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rushhour.detect.rcf.detector import RCFDetector
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.notify.notifier import Notifier
from rushhour.pipeline.bucketizer import EventTimeBucketizer
from rushhour.pipeline.detectors import DetectorBank, ModelSet
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.processor import Batch, Processor
from rushhour.series.generate import generate_traffic
from rushhour.settings import load_settings
from rushhour.store import open_store
from rushhour.testing import FakeClock

START = 1_772_409_600 + 7 * 86400 + 8 * 3600  # Monday 2026-03-09 08:00 UTC
TEMPLATES = 8  # aged forests copied into every series with --rcf-history
LEVELS = 17  # distinct traffic levels of the series (see level())


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    """Resident memory now, MiB."""
    return _status_mb("VmRSS")


class Phases:
    """Resident memory now and at its peak so far (the kernel's high-water mark) after each phase
    of the run, so the memory table can say where the bytes go and which phase sets the peak."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []

    def mark(self, name: str) -> None:
        self.rows.append((name, rss_mb(), _status_mb("VmHWM")))

    def print(self) -> None:
        print("memory by phase (MiB): current RSS, peak RSS so far")
        for name, now, peak in self.rows:
            print(f"  {name:<48} {now:8,.0f} {peak:8,.0f}")


def level(i: int) -> float:
    """Series ``i``'s traffic level: its band and live records are the template's x this."""
    return 0.5 + (i % LEVELS) / 10


def aged_forests(
    bank: DetectorBank, buckets: int, scales: list[float], expected: Any
) -> list[RCFDetector]:
    """One pipeline forest (with its running threshold) per entry of ``scales``, each after
    ``buckets`` one-minute buckets of generated traffic x that scale (another seed each); with
    ``buckets`` 0, after 300 buckets of the template's rhythm at that level (``expected``)."""
    out = []
    for j, scale in enumerate(scales):
        if buckets:
            start = datetime.fromtimestamp(START - buckets * 60, tz=UTC)
            values = generate_traffic(start, days=-(-buckets // 1440), seed=100 + j).series
            x = values.to_numpy(dtype=float)[:buckets] * scale
        else:
            t = START - 300 * 60 + 60 * np.arange(300)
            mean, _ = expected(pd.DatetimeIndex(pd.to_datetime(t, unit="s", utc=True)))
            x = np.random.default_rng(100 + j).poisson(mean * scale).astype(float)
        key = f"__aged{j}"
        bank.warm_forest(key, x)
        out.append(bank.forests.pop(key))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument(
        "--records-per-bucket", type=int, default=1, help="points per series per minute"
    )
    ap.add_argument("--rcf", action="store_true", help="run each series' forest too (50 trees)")
    ap.add_argument(
        "--rcf-history",
        type=int,
        default=0,
        help="with --rcf: start every forest at its steady state after this many buckets: "
        f"{TEMPLATES} forests learn that many buckets of generated traffic, and each series' "
        "forest is a copy of one of them (arrays of its own); 0: each forest learns 300 buckets",
    )
    ap.add_argument(
        "--rcf-own-level",
        action="store_true",
        help=f"with --rcf: one aged forest per traffic level ({LEVELS}), each series' forest a "
        "copy of its own level's, so forests judge traffic at the level they learned (without "
        "it every forest learned one level and most series' live buckets are out of range)",
    )
    ap.add_argument(
        "--rcf-time-decay", type=int, help="detect.rcf_time_decay (default: the setting's)"
    )
    ap.add_argument(
        "--default",
        action="store_true",
        help="run each series' default detector too; it then decides alerts "
        '(detect.alert_by = "default", the shipped setting); without it the band decides',
    )
    ap.add_argument(
        "--notify",
        action="store_true",
        help="feed the deciding detector's verdicts to a notifier (episodes, hygiene; no channels)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        help="pipeline.workers: threads scoring the forests (default: its own)",
    )
    ap.add_argument(
        "--no-score-ahead",
        action="store_true",
        help="after each commit, only let the forests learn (the peer of the default, which "
        "also scores each series' next bucket before it closes: Processor.settle)",
    )
    ap.add_argument("--profile", help="write a cProfile of the processing to this file")
    args = ap.parse_args()
    n, minutes = args.series, args.minutes
    tmp = Path(tempfile.mkdtemp())
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": str(tmp),
            "pipeline": {"retrain_cron": ""} | ({"workers": args.workers} if args.workers else {}),
            "detect": {"rcf": args.rcf, "default": args.default}
            | ({"rcf_time_decay": args.rcf_time_decay} if args.rcf_time_decay else {}),
        },
    )
    store = open_store(settings.store_url())
    clock = FakeClock(wall=START)

    phases = Phases()
    phases.mark("start (imports, settings, store)")
    base = rss_mb()
    history = generate_traffic(
        datetime.fromtimestamp(START - 7 * 86400 - 8 * 3600, tz=UTC),
        weeks=1,
        seed=1,
        anomalies_per_day=0,
    ).series
    template = MeanPredictor(key=settings.detect.key, smooth=3).fit(history)
    bank = DetectorBank(settings)
    models = ModelSet()
    keys = [f"svc{i:05d}{{region=eu}}" for i in range(n)]
    for i, key in enumerate(keys):
        # every series gets its own model arrays (as after training), scaled to its own level
        scale = level(i)
        p = MeanPredictor.restore(template.snapshot())
        assert p.mean_ is not None and p.dev_ is not None
        p.mean_, p.dev_ = p.mean_ * scale, p.dev_ * np.sqrt(scale)
        models.bands[key] = bank._band(p)
    models.bands.trim()
    bank.swap(models)
    gc.collect()
    models_mb = rss_mb() - base
    phases.mark("band models")

    notifier = Notifier(store, [], bucket_seconds=60) if args.notify else None
    processor = Processor(settings, store, bank, clock, notifier=notifier)
    processor.restore()
    phases.mark("processor restored (forest scoring primed)")
    forests_mb = 0.0
    forest_arrays_kb = 0.0
    if args.rcf and (args.rcf_history or args.rcf_own_level):
        # every forest a copy (arrays of its own) of an aged one, adopted before the live batches
        before = rss_mb()
        levels = (
            [level(j) for j in range(LEVELS)]
            if args.rcf_own_level
            else [1.0] * TEMPLATES  # generated traffic at the template's level
        )
        aged = aged_forests(bank, args.rcf_history, levels, template.expected)
        for i, key in enumerate(keys):
            src = aged[i % len(aged)]  # with --rcf-own-level: the series' own level
            bank.adopt_forest(key, replace(src, forest_=src.forest.copy()))
        del aged, src
        gc.collect()
        forests_mb = rss_mb() - before
        arrays = [det.forest.memory_bytes(in_use=False) for det in bank.forests.values()]
        forest_arrays_kb = float(np.mean(arrays)) / 1e3
    elif args.rcf:  # every forest warm (300 buckets of Poisson(1000) noise), as after a restart
        before = rss_mb()
        warm = np.random.default_rng(1).poisson(1000, size=300).astype(float)
        for key in keys:
            bank.warm_forest(key, warm)
        gc.collect()
        forests_mb = rss_mb() - before
        arrays = [det.forest.memory_bytes(in_use=False) for det in bank.forests.values()]
        forest_arrays_kb = float(np.mean(arrays)) / 1e3
    if args.rcf:
        phases.mark("forests " + ("aged" if args.rcf_history else "warmed"))
    defaults_mb = 0.0
    if args.default:  # steady state: every default detector past its warm-up (300 buckets)
        before = rss_mb()
        warm_t = START - 300 * 60 + 60 * np.arange(300)
        # each series' own level and rhythm, as its live minutes have them (a detector warmed on
        # another level flags every live bucket, and the store then writes an anomaly per series)
        warm_mean, _ = template.expected(
            pd.DatetimeIndex(pd.to_datetime(warm_t, unit="s", utc=True))
        )
        warm_rng = np.random.default_rng(2)
        rows = bank.default_rows(keys)
        for lo in range(0, n, 100):  # a hundred series per step of the fleet
            part = rows[lo : lo + 100]
            warm_x = np.concatenate(
                [
                    warm_rng.poisson(warm_mean * level(i)).astype(float)
                    for i in range(lo, lo + len(part))
                ]
            )
            bank.default_run(np.repeat(part, 300), np.tile(warm_t, len(part)), warm_x)
        gc.collect()
        defaults_mb = rss_mb() - before
        phases.mark("default detectors warmed")
    profiler = cProfile.Profile() if args.profile else None
    labels = {k: (k.split("{")[0], {"region": "eu"}) for k in keys}
    scales = np.array([level(i) for i in range(n)])
    rng = np.random.default_rng(0)
    expected_at = template.expected
    latencies, cpu, cpu_commit = [], [], []
    closed_total = 0
    for m in range(minutes + 3):
        t0 = START + m * 60
        mean, _ = expected_at(pd.DatetimeIndex([pd.Timestamp(t0, unit="s", tz="UTC")]))
        values = rng.poisson(mean[0] * scales).astype(float)
        per = args.records_per_bucket
        times = np.repeat(t0 + np.arange(per) * (60 / per), n).reshape(per, n).T.ravel()
        batch = PointBatch(
            [k for k in keys for _ in range(per)], times, np.repeat(values / per, per), labels
        )
        clock.advance(60)
        arrived = time.perf_counter()
        c0 = time.process_time()
        if profiler is not None and m >= 3:
            profiler.enable()
        outcome = processor.process(Batch(source="bench", points=batch, position={"m": m}))
        committed = time.perf_counter()
        c1 = time.process_time()
        # the forests learn the committed buckets before the next batch (the runtime does this
        # after each batch's commit and ack, while the next minute's records arrive)
        if args.no_score_ahead:
            processor.bank.learn_pending()
        else:
            processor.settle()
        if profiler is not None:
            profiler.disable()
        if m == 2:
            phases.mark("first 3 minutes (the first buckets close)")
        if m >= 3:  # warm-up: the first buckets close after the 2-minute lateness
            cpu.append(time.process_time() - c0)
            cpu_commit.append(c1 - c0)
            if outcome.closed:
                latencies.append(committed - arrived)
        closed_total += outcome.closed
    total_mb = rss_mb() - base
    phases.mark(f"steady state ({minutes} more minutes)")

    # peers: the bucketizer alone, and a bare sqlite executemany of the same number of bucket rows
    b = EventTimeBucketizer(60, 120)
    c0 = time.process_time()
    for m in range(minutes):
        b.add(keys, np.full(n, START + m * 60.0), np.ones(n))
    bucketizer_cpu = (time.process_time() - c0) / minutes
    con = sqlite3.connect(tmp / "peer.db")
    con.execute("pragma journal_mode=wal")
    con.execute(
        "create table b (series_id int, start int, value real, primary key (series_id, start))"
    )
    c0 = time.process_time()
    for m in range(minutes):
        with con:
            con.executemany(
                "insert or replace into b values (?,?,?)",
                [(i, START + m * 60, 1.0) for i in range(n)],
            )
    sqlite_cpu = (time.process_time() - c0) / minutes

    per_minute = float(np.mean(cpu))
    print(
        f"series: {n:,}, simulated minutes: {minutes}, records per series-minute: {args.records_per_bucket}"
    )
    opened = len(notifier.episodes.open_episodes()) if notifier is not None else "no notifier"
    print(f"deciding detector: {bank.decider}; open episodes at the end: {opened}")
    print(
        f"CPU per simulated minute: {per_minute:.3f} s  -> headroom {60 / per_minute:.1f}x on one core"
    )
    print(
        f"  peers: bucketizer alone {bucketizer_cpu:.3f} s ({per_minute / bucketizer_cpu:.1f}x), "
        f"bare sqlite upsert of the rows {sqlite_cpu:.3f} s ({per_minute / sqlite_cpu:.1f}x)"
    )
    print(
        f"  of which up to the commit (the latency path) {np.mean(cpu_commit):.3f} s, "
        f"the forests learning and scoring ahead after it "
        f"{per_minute - np.mean(cpu_commit):.3f} s "
        "(CPU time of all threads)"
    )
    if args.rcf:
        print(
            f"  closed buckets whose forest score was computed ahead (at settle): "
            f"{bank.ahead_used:,} of {closed_total:,}"
        )
    print(f"throughput: {n * args.records_per_bucket / per_minute:,.0f} records/s")
    lat = np.array(latencies)
    print(
        f"close -> committed latency: p50 {np.percentile(lat, 50) * 1000:.0f} ms, p99 {np.percentile(lat, 99) * 1000:.0f} ms"
    )
    print(
        f"memory: band models {models_mb:.0f} MB, forests {forests_mb:.0f} MB, "
        f"default detectors {defaults_mb:.0f} MB, total {total_mb:.0f} MB"
        f" -> {total_mb * 1e6 / n / 1e3:.1f} kB per series"
    )
    print(
        f"bands: {models.bands.nbytes() / n / 1e3:.1f} kB of arrays per series "
        f"({models.bands.day_rows() / n:.1f} day rows of 1440 means and deviations each)"
    )
    if bank.fleet is not None:
        held = sum(a[: bank.fleet.size].nbytes for a in bank.fleet.arrays.values())
        print(f"default detectors: {held / n / 1e3:.1f} kB of state arrays per series")
    if args.rcf:
        how = f"after {args.rcf_history:,} buckets" if args.rcf_history else "after 300 buckets"
        how += ", one per traffic level" if args.rcf_own_level else ""
        print(
            f"forests ({how}, time decay {settings.detect.rcf_time_decay:,} records): "
            f"{forests_mb * 1e3 / n:.0f} kB resident each, "
            f"{forest_arrays_kb:.0f} kB of it the forest's arrays"
        )
    phases.print()
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if profiler is not None:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
