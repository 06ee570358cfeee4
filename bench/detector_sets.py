"""The default detector on fixed sets of generated traffic (and NAB): the figures of the eighth round.

Usage: PYTHONPATH=src python bench/detector_sets.py [--nab] [--fresh] [--freq 5min]
       [--set 'name=START,FIRST_SEED,SEEDS' ...]

``--nab`` first prints the NAB development subset's scores (optimized and as shipped, three profiles).
Then event F1 per set and pooled, with ``bench/evaluate.py``'s ``generated`` (4 weeks, US calendar):

* the five development sets (A 2026-11-02 seeds 0-5, B 2026-01-05 seeds 0-2, C 2026-11-02 seeds
  6-11, D 2026-03-02 seeds 3-5, E 2026-05-04 seeds 6-8), used while choosing;
* ``--fresh``: 30 seeds used for no choice (F 2026-07-06 seeds 20-29, G 2026-09-07 seeds 30-39,
  H 2026-02-02 seeds 40-49).

``RUSHHOUR_BENCH_CONFIG='{"rise_within": 40}'`` overrides fields of ``DetectorConfig`` (JSON; lists
become tuples), to measure a variant without editing code.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from evaluate import generated  # bench/evaluate.py, beside this script

from rushhour.detect.default import DefaultDetector, DetectorConfig
from rushhour.evaluate import nab
from rushhour.evaluate.events import EventMetrics, total
from rushhour.evaluate.runner import evaluate_corpus, load_labels

DEVELOPMENT = {
    "A": ("2026-11-02", 0, 6),
    "B": ("2026-01-05", 0, 3),
    "C": ("2026-11-02", 6, 6),
    "D": ("2026-03-02", 3, 3),
    "E": ("2026-05-04", 6, 3),
}
FRESH = {"F": ("2026-07-06", 20, 10), "G": ("2026-09-07", 30, 10), "H": ("2026-02-02", 40, 10)}


def config_from_env() -> DetectorConfig:
    """The default configuration with the fields ``RUSHHOUR_BENCH_CONFIG`` overrides."""
    fields = json.loads(os.environ.get("RUSHHOUR_BENCH_CONFIG", "{}"))
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return replace(DetectorConfig(), **fields)


def parse_set(text: str) -> tuple[str, tuple[str, int, int]]:
    name, spec = text.split("=", 1)
    start, first, seeds = spec.split(",")
    return name, (start, int(first), int(seeds))


def line(name: str, m: EventMetrics) -> str:
    return (
        f"{name}: F1 {m.f1:.3f} (P {m.precision:.3f} R {m.recall:.3f}) "
        f"tp {m.tp} fp {m.fp} fn {m.fn}, median delay {m.median_delay}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nab", action="store_true", help="NAB development subset first")
    ap.add_argument("--nab-dir", type=Path, default=Path("/work/shared/nab"))
    ap.add_argument("--fresh", action="store_true", help="the 30 seeds used for no choice")
    ap.add_argument("--freq", default="1min", help="bucket width of the generated traffic")
    ap.add_argument("--set", action="append", default=[], help="NAME=START,FIRST_SEED,SEEDS")
    args = ap.parse_args()
    cfg = config_from_env()
    if args.nab:
        t0 = time.perf_counter()
        labels = load_labels(args.nab_dir / "labels" / "combined_windows.json")
        ev = evaluate_corpus(args.nab_dir / "data", labels, lambda: DefaultDetector(cfg))
        opt = " / ".join(f"{ev.optimized[p.name].normalized:.2f}" for p in nab.PROFILES)
        shipped = " / ".join(f"{ev.shipped[p.name].normalized:.2f}" for p in nab.PROFILES)
        took = time.perf_counter() - t0
        print(f"NAB standard / low FP / low FN: optimized {opt}; shipped {shipped} ({took:.1f} s)")
    sets = dict(parse_set(s) for s in args.set) or (FRESH if args.fresh else DEVELOPMENT)
    parts = []
    for name, (start, first, seeds) in sets.items():
        day = datetime.fromisoformat(start).replace(tzinfo=UTC)
        m = generated(cfg, seeds, args.freq, first, day)
        parts.append(m)
        print(line(f"set {name} ({start}, seeds {first}-{first + seeds - 1})", m), flush=True)
    print(line(f"pooled, {args.freq} buckets", total(parts)))


if __name__ == "__main__":
    main()
