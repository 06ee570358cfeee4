"""Detection quality and runtime of the default detector and its ablations, in one run.

Usage: PYTHONPATH=src python bench/evaluate.py [--nab /work/shared/nab] [--seeds 3]
       [--first-seed 0] [--start 2026-01-05] [--variants N]

Generated traffic is made with the US public holidays (``generate_traffic``'s default, as ``rushhour
generate`` with default settings), and the detector is given the same calendar
(``DetectorConfig.holidays_country``: configuration a user sets, as ``rushhour run`` passes the
``holidays_country`` setting, and ``rushhour evaluate`` too), except in the row "- holiday
calendar". The NAB corpus is run without a calendar here (its scores are identical with one).

``--first-seed 3 --start 2026-03-02`` measures generated data not used while developing;
``--variants 3`` runs only the first three rows (the default, without the rhythm path, without the
holiday calendar).

For each variant (the shipped default, then one component or stage removed at a time) it runs the
NAB development subset causally (when present) and generated traffic (4 weeks per seed, 2 labelled
anomalies a day, in 1-minute and in 5-minute buckets), and prints a markdown table: NAB scores with
optimized thresholds and as shipped, event-level F1 and median delay, and runtime as a ratio to the
default's. Event metrics read the pages (``alert``: one per incident, the decision ``rushhour
evaluate`` ships), except the "live episodes" column: the episodes ``rushhour run`` opens (and
notifies) from the per-bucket flags (``anomalous``), resolved after 3 quiet buckets.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from rushhour.detect.default import DefaultDetector, DetectorConfig
from rushhour.evaluate import nab
from rushhour.evaluate.events import EventMetrics, episode_starts, event_metrics, total
from rushhour.evaluate.runner import evaluate_corpus, load_labels
from rushhour.series.generate import generate_traffic

#: the public holidays the generated traffic follows (and the detector is told of)
GENERATOR_HOLIDAYS = "US"
NO_CALENDAR = "- holiday calendar (generated traffic judged without it)"
DEFAULT = DetectorConfig()
VARIANTS: dict[str, DetectorConfig] = {
    "default (residual+shift+range, likelihood, novelty, daily recurrence, rhythm, calibrated path, refractory, holdoff)": (
        DEFAULT
    ),
    "- rhythm path": replace(DEFAULT, rhythm=False),
    NO_CALENDAR: DEFAULT,
    "- calibrated path": replace(DEFAULT, calibrated=False),
    "- novelty (recurring surprises not bounded)": replace(DEFAULT, novelty=False),
    "- daily recurrence (same time of day not discounted)": replace(DEFAULT, recurrence=False),
    "- rhythm and calibrated paths (likelihood only)": replace(
        DEFAULT, rhythm=False, calibrated=False
    ),
    "outlier weight 1 (incidents widen the baseline's noise)": replace(DEFAULT, outlier_weight=1.0),
    "no median vote (level_vote 0)": replace(DEFAULT, level_vote=0.0),
    "- shift": replace(DEFAULT, components=("residual", "range")),
    "- range": replace(DEFAULT, components=("residual", "shift")),
    "residual only": replace(DEFAULT, components=("residual",)),
    "- likelihood (Gaussian tail of raw z)": replace(DEFAULT, likelihood=False),
    "- refractory (damp=1)": replace(DEFAULT, damp=1.0),
    "holdoff 0": replace(DEFAULT, holdoff=0),
    "holdoff 120": replace(DEFAULT, holdoff=120),
    "time-scaled memories": replace(DEFAULT, time_scaled=True),
    "+ discord (shape novelty)": replace(DEFAULT, components=(*DEFAULT.components, "discord")),
    "+ discord, Fisher combination": replace(
        DEFAULT, components=(*DEFAULT.components, "discord"), combine="fisher"
    ),
}


def generated(
    config: DetectorConfig,
    seeds: int,
    freq: str = "1min",
    first: int = 0,
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC),
    live: bool = False,
    calendar: bool = True,
) -> EventMetrics:
    parts = []
    config = with_calendar(config, calendar)
    for seed in range(first, first + seeds):
        tr = generate_traffic(
            start, weeks=4, seed=seed, freq=freq, holidays_country=GENERATOR_HOLIDAYS
        )
        idx = tr.frame.index
        rows = nab.window_indices(
            idx.asi8,
            [(pd.Timestamp(w.start).value, pd.Timestamp(w.end).value) for w in tr.anomalies],
        )
        res = DefaultDetector(config).run(idx, tr.frame["value"].to_numpy(dtype=float))
        decided = episode_starts(res.anomalous) if live else res.alert
        parts.append(event_metrics(decided, rows, nab.probationary_length(len(idx))))
    return total(parts)


def with_calendar(config: DetectorConfig, calendar: bool) -> DetectorConfig:
    """The configuration with the generator's holiday calendar (or with none)."""
    return replace(config, holidays_country=GENERATOR_HOLIDAYS if calendar else None)


def by_kind(
    config: DetectorConfig, seeds: int, first: int, start: datetime, calendar: bool = True
) -> dict[str, str]:
    """Caught / labelled windows and median delay per anomaly kind (1-minute buckets)."""
    parts: dict[str, list[EventMetrics]] = {}
    config = with_calendar(config, calendar)
    for seed in range(first, first + seeds):
        tr = generate_traffic(start, weeks=4, seed=seed, holidays_country=GENERATOR_HOLIDAYS)
        idx = tr.frame.index
        res = DefaultDetector(config).run(idx, tr.frame["value"].to_numpy(dtype=float))
        for kind in sorted({w.kind for w in tr.anomalies}):
            spans = [
                (pd.Timestamp(w.start).value, pd.Timestamp(w.end).value)
                for w in tr.anomalies
                if w.kind == kind
            ]
            rows = nab.window_indices(idx.asi8, spans)
            m = event_metrics(res.alert, rows, nab.probationary_length(len(idx)))
            parts.setdefault(kind, []).append(m)
    out = {}
    for kind, ms in parts.items():
        m = total(ms)
        out[kind] = f"{m.tp}/{m.tp + m.fn} (median delay {m.median_delay})"
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nab", type=Path, default=Path("/work/shared/nab"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--start", default="2026-01-05", help="first day of the generated traffic")
    ap.add_argument("--variants", type=int, default=len(VARIANTS), help="run the first N rows")
    ap.add_argument("--by-kind", action="store_true", help="per anomaly kind, first N rows only")
    args = ap.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    if args.by_kind:
        for name, cfg in list(VARIANTS.items())[: args.variants]:
            print(name, by_kind(cfg, args.seeds, args.first_seed, start, name != NO_CALENDAR))
        return
    have_nab = (args.nab / "data").is_dir()
    labels = load_labels(args.nab / "labels" / "combined_windows.json") if have_nab else {}
    DefaultDetector().run(pd.date_range("2026-01-01", periods=10, freq="5min"), np.ones(10))
    print(
        "| variant | NAB std opt | low FP opt | low FN opt | NAB std shipped | low FP shipped "
        "| low FN shipped | NAB events F1 | generated F1 (P/R) | generated median delay "
        "| generated 5-min F1 (P/R) | generated live episodes F1 (P/R) | NAB runtime s (ratio) |"
    )
    print("|---" * 13 + "|")
    base_time = None
    for name, cfg in list(VARIANTS.items())[: args.variants]:
        cells = []
        if have_nab:
            t0 = time.perf_counter()
            ev = evaluate_corpus(args.nab / "data", labels, lambda cfg=cfg: DefaultDetector(cfg))
            secs = time.perf_counter() - t0
            base_time = base_time or secs
            cells += [f"{ev.optimized[p.name].normalized:.2f}" for p in nab.PROFILES]
            cells += [f"{ev.shipped[p.name].normalized:.2f}" for p in nab.PROFILES]
            cells.append(f"{ev.overall_events.f1:.3f}")
        else:
            secs = float("nan")
            cells += ["n/a"] * 7
        cal = name != NO_CALENDAR
        g = generated(cfg, args.seeds, "1min", args.first_seed, start, calendar=cal)
        cells.append(f"{g.f1:.3f} ({g.precision:.2f}/{g.recall:.2f})")
        cells.append(f"{g.median_delay}")
        g5 = generated(cfg, args.seeds, "5min", args.first_seed, start, calendar=cal)
        cells.append(f"{g5.f1:.3f} ({g5.precision:.2f}/{g5.recall:.2f})")
        ep = generated(cfg, args.seeds, "1min", args.first_seed, start, live=True, calendar=cal)
        cells.append(f"{ep.f1:.3f} ({ep.precision:.2f}/{ep.recall:.2f})")
        cells.append(f"{secs:.1f} ({secs / base_time:.2f}x)" if base_time else "n/a")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
