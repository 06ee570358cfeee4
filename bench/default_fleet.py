"""The default detector stepped one series at a time against many series in one fleet step.

Both warm (300 one-minute buckets learned), then one bucket per step: ``DefaultDetector.run`` on one
series per call (the per-call overhead a live pipeline paid per series before the fleet), and
``DefaultFleet.run`` on ``--series`` series per call. Prints CPU per series-bucket and the ratio,
and the bytes of state arrays the fleet holds per series (by stage).

    python bench/default_fleet.py --series 10000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from rushhour.detect.default import DefaultDetector, DefaultFleet

WARM = 300


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=20, help="fleet steps (one bucket per series)")
    ap.add_argument("--calls", type=int, default=2000, help="single-series calls")
    args = ap.parse_args()
    n, steps = args.series, args.steps
    idx = pd.date_range("2026-01-05", periods=WARM + max(steps, args.calls), freq="1min", tz="UTC")
    x = np.random.default_rng(0).poisson(1000, size=len(idx)).astype(float)

    det = DefaultDetector(bucket_seconds=60)
    det.run(idx[:WARM], x[:WARM])
    c0 = time.process_time()
    for i in range(WARM, WARM + args.calls):
        det.run(idx[i : i + 1], x[i : i + 1])
    single = (time.process_time() - c0) / args.calls

    fleet = DefaultFleet(bucket_seconds=60)
    rows = fleet.add(n)
    ns = idx.asi8
    fleet.run(np.repeat(rows, WARM), np.tile(ns[:WARM], n), np.tile(x[:WARM], n))
    c0 = time.process_time()
    for i in range(WARM, WARM + steps):
        fleet.run(rows, np.full(n, ns[i]), np.full(n, x[i]))
    many = (time.process_time() - c0) / steps / n
    print(f"DefaultDetector.run, one series, one bucket per call: {single * 1e6:.0f} us per call")
    print(
        f"DefaultFleet.run, {n:,} series, one bucket each per call: {many * 1e6:.2f} us per "
        f"series-bucket ({single / many:.0f}x less)"
    )
    stages: dict[str, int] = {}
    for name, arr in fleet.arrays.items():
        stage = name.split(".")[0].rstrip("0123456789")
        stages[stage] = stages.get(stage, 0) + arr[: fleet.size].nbytes // fleet.size
    parts = ", ".join(f"{k} {v:,}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1]))
    print(f"state: {sum(stages.values()):,} bytes per series ({parts})")


if __name__ == "__main__":
    main()
