"""Memory of the live pipeline's Random Cut Forests as they age (issue 6: 10,000 series in 4 GB).

Builds forests of the pipeline's configuration (``detect.rcf_*`` through ``DetectorBank.forest``:
50 trees x 256 samples, shingles of 4 one-minute buckets, no cached boxes), feeds each one
``--buckets`` one-minute buckets of generated traffic (300, a week, 20,000 by default) and prints the
bytes of its arrays, allocated and in use, and the CPU per bucket. The peer is the same measurement
run in a subprocess on another checkout's code (``--peer-src``, the main checkout by default: the
layout before this one), with its Numba cache in a folder of its own; both must give the same scores
(a checksum of every score is compared, when both decay alike). The last lines scale a forest to
10,000 series with the process before any series (``--base-mb``), the Mean Predictor band and the
rest of the pipeline's per-series state (``--rest-kb``), and the default detector
(``--default-kb``), as measured by ``bench/pipeline.py --rcf --default`` (docs/benchmarks.md).

    python bench/rcf_memory.py [--forests 3] [--buckets 300,10080,20000] [--peer-src DIR]
                               [--time-decay RECORDS]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

SERIES = 10_000
BUDGET_GB = 4.0


def measure(
    forests: int, checkpoints: list[int], time_decay: int | None = None
) -> dict[str, object]:
    """Feed ``forests`` pipeline forests up to each checkpoint; their mean bytes there (with
    ``detect.rcf_time_decay`` set to ``time_decay`` when given, the setting's default otherwise)."""
    from rushhour.pipeline.detectors import DetectorBank
    from rushhour.series.generate import generate_traffic
    from rushhour.settings import load_settings

    settings = load_settings(environ={}, overrides={"detect": {"rcf": True}})
    bank = DetectorBank(settings)
    days = -(-max(checkpoints) // 1440)
    rows: dict[int, dict[str, list[float]]] = {
        n: {"allocated": [], "in_use": [], "points": [], "cpu_us": []} for n in checkpoints
    }
    digest = hashlib.sha256()
    for i in range(forests):
        values = generate_traffic(datetime(2026, 3, 2, tzinfo=UTC), days=days, seed=i).series
        x = values.to_numpy(dtype=float)
        det = bank.forest(f"svc{i}")
        assert det is not None
        forest = det.forest
        if time_decay is not None:  # (not through the setting: the peer's code may predate it)
            forest.config.time_decay = time_decay
        decay = forest.config.time_decay
        done = 0
        for n in checkpoints:
            t = time.process_time()
            scores = forest.process(x[done:n].reshape(-1, 1)).scores
            cpu = time.process_time() - t
            digest.update(np.ascontiguousarray(scores).tobytes())
            row = rows[n]
            row["allocated"].append(forest.memory_bytes(in_use=False))
            row["in_use"].append(forest.memory_bytes(in_use=True))
            row["points"].append(forest.arrays_.points_in_use())  # type: ignore[union-attr]
            row["cpu_us"].append(cpu / (n - done) * 1e6)
            done = n
    return {
        "checkpoints": {
            str(n): {k: float(np.mean(v)) for k, v in r.items()} for n, r in rows.items()
        },
        "scores_sha256": digest.hexdigest(),
        "time_decay": decay,
    }


def run_peer(
    src: str, forests: int, checkpoints: list[int], time_decay: int | None
) -> dict[str, object]:
    # the peer's compiled kernels are cached apart, never inside the other checkout
    cache = Path(tempfile.gettempdir()) / "rushhour-rcf-memory-peer-numba"
    env = dict(os.environ, PYTHONPATH=src, NUMBA_CACHE_DIR=str(cache))
    argv = [sys.executable, __file__, "--child", "--forests", str(forests)]
    argv += ["--buckets", ",".join(map(str, checkpoints))]
    if time_decay is not None:
        argv += ["--time-decay", str(time_decay)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forests", type=int, default=3, help="series measured (means are printed)")
    ap.add_argument("--buckets", default="300,10080,20000", help="checkpoints, in buckets")
    ap.add_argument("--peer-src", default="/work/main/src", help="the peer's src folder ('' none)")
    ap.add_argument(
        "--base-mb", type=float, default=277.0, help="the process before any series (MiB)"
    )
    ap.add_argument(
        "--rest-kb", type=float, default=27.6, help="band and the runtime's state, per series"
    )
    ap.add_argument("--default-kb", type=float, default=22.1, help="default detector per series")
    ap.add_argument(
        "--time-decay",
        type=int,
        help="time decay of the measured forests, the peer's too (default: each checkout's "
        "detect.rcf_time_decay, or 100,000 before that setting)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    checkpoints = sorted(int(b) for b in args.buckets.split(","))
    # one warm-up feed first, so Numba's compilation stays out of the CPU figures
    measure(1, [300])
    if args.child:
        print(json.dumps(measure(args.forests, checkpoints, args.time_decay)))
        return
    ours = measure(args.forests, checkpoints, args.time_decay)
    peer = (
        run_peer(args.peer_src, args.forests, checkpoints, args.time_decay)
        if args.peer_src
        else None
    )
    print(
        f"pipeline forests (50 trees x 256 samples, shingle 4, time decay "
        f"{ours['time_decay']:,}"
        + (f", peer's {peer.get('time_decay', 100_000):,}" if peer else "")
        + f"), mean of {args.forests} series; "
        f"kB = 1000 bytes; peer: {args.peer_src or 'none'}"
    )
    head = f"{'buckets':>8} {'allocated':>10} {'in use':>8} {'points':>7} {'us/bucket':>9}"
    print(f"{'':>8} {'rushhour':^37}" + (f" | {'peer':^37} | alloc ratio" if peer else ""))
    print(head + (" | " + head[9:] if peer else ""))
    for n in checkpoints:
        line = _row(ours, n, with_buckets=True)
        if peer:
            a = ours["checkpoints"][str(n)]["allocated"]  # type: ignore[index]
            b = peer["checkpoints"][str(n)]["allocated"]  # type: ignore[index]
            line += " | " + _row(peer, n, with_buckets=False) + f" | {a / b:.2f}x"
        print(line)
    if peer and peer.get("time_decay", 100_000) == ours["time_decay"]:
        same = ours["scores_sha256"] == peer["scores_sha256"]
        print(f"scores identical to the peer's: {'yes' if same else 'NO'}")
    elif peer:
        print("scores not compared: the two forests decay at different rates")
    last = str(checkpoints[-1])
    for name, result in (("rushhour", ours), ("peer", peer)):
        if result is None:
            continue
        kb = result["checkpoints"][last]["allocated"] / 1e3  # type: ignore[index]
        base = args.base_mb * 1.048576 / 1e3
        for label, extra in (
            ("band", args.rest_kb),
            ("band + default", args.rest_kb + args.default_kb),
        ):
            gb = base + SERIES * (kb + extra) / 1e6
            verdict = "within" if gb <= BUDGET_GB else "over"
            print(
                f"{name}: {SERIES:,} series after {int(last):,} buckets, process {base:.2f} GB + "
                f"forest + {label}: {kb:.0f} + {extra:.0f} kB each = {gb:.2f} GB "
                f"({verdict} {BUDGET_GB:.0f} GB)"
            )


def _row(result: dict[str, object], n: int, *, with_buckets: bool) -> str:
    r = result["checkpoints"][str(n)]  # type: ignore[index]
    cells = (
        f"{r['allocated'] / 1e3:>8.0f}kB {r['in_use'] / 1e3:>6.0f}kB "
        f"{r['points']:>7.0f} {r['cpu_us']:>9.1f}"
    )
    return (f"{n:>8} " if with_buckets else "") + cells


if __name__ == "__main__":
    main()
