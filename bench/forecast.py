"""Forecast quality and speed: every model through the same rolling-origin backtest, per series.

Protocol (docs/forecasting.md): the last week held out plus ``--weeks`` earlier weekly origins;
horizons 1 week (weekly origins) and 3 hours (origins every 6 hours); MASE against the in-sample
weekly seasonal naive; windows touching a US public holiday or a labelled NAB event are reported
separately (``holiday``), and for nyc_taxi the 3-hour windows that start inside the labelled
blizzard (2015-01-24 20:30 .. 2015-01-29 03:30) are reported on their own. Ratios are against the
seasonal naive and the seed's Mean Predictor measured in the same run.

    PYTHONPATH=src python bench/forecast.py                     # all series, default models
    PYTHONPATH=src python bench/forecast.py --series nyc_taxi --models adaptive,holt-winters-mul
    PYTHONPATH=src python bench/forecast.py --deepar            # adds DeepAR (small, 15 epochs, once)
    PYTHONPATH=src python bench/forecast.py --speed             # Mean Predictor on a year of 1-minute data
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # "on one core"
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from rushhour.forecast import registry
from rushhour.forecast.backtest import BacktestConfig, run_backtest, score
from rushhour.forecast.series_file import read_series
from rushhour.series.generate import generate_traffic

NAB = Path(os.environ.get("RUSHHOUR_NAB", "/work/shared/nab"))
MODELS = (
    "seasonal-naive",
    "mean-predictor",
    "mean-predictor-dow",
    "holt-winters-mul",
    "holt-winters-add",
    "mstl-ets",
    "mstl-arima",
    "adaptive",
)
BLIZZARD = (pd.Timestamp("2015-01-24 20:30", tz="UTC"), pd.Timestamp("2015-01-29 03:30", tz="UTC"))


def nab(rel: str, resample: str | None = None) -> tuple[pd.Series, list[tuple[datetime, datetime]]]:
    y = read_series(NAB / "data" / rel)
    if resample:
        y = y.resample(resample).mean()
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text()).get(rel, [])
    events = [
        (pd.Timestamp(a, tz="UTC").to_pydatetime(), pd.Timestamp(b, tz="UTC").to_pydatetime())
        for a, b in labels
    ]
    return y, events


def generated(seed: int, tz: str) -> tuple[pd.Series, list[tuple[datetime, datetime]]]:
    t = generate_traffic(
        datetime(2025, 8, 4, tzinfo=UTC),
        weeks=20,
        freq="30min",
        seed=seed,
        anomalies_per_day=1.0,
        tz=tz,
    )
    # injected anomalies fall in every week: they stay in the "normal" windows, as in production
    return t.series, []


SERIES: dict[str, Any] = {
    "nyc_taxi": lambda: nab("realKnownCause/nyc_taxi.csv"),
    "generated_utc": lambda: generated(11, "UTC"),
    "generated_newyork": lambda: generated(12, "America/New_York"),
    "ambient_temperature": lambda: nab("realKnownCause/ambient_temperature_system_failure.csv"),
    "cpu_asg_30min": lambda: nab(
        "realKnownCause/cpu_utilization_asg_misconfiguration.csv", "30min"
    ),
}
TZ = {"generated_newyork": "America/New_York"}
DEEPAR = "deepar-small"


def main() -> int:
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", default=",".join(SERIES))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--horizons", default="1w,3h")
    ap.add_argument("--deepar", action="store_true", help="add DeepAR (small, 15 epochs, CPU)")
    ap.add_argument("--speed", action="store_true", help="only the Mean Predictor speed benchmark")
    ap.add_argument("--json", type=Path, help="also write all rows here")
    args = ap.parse_args()
    if args.speed:
        speed()
        return 0
    models = tuple(args.models.split(","))
    if args.deepar:
        models = (*models, add_deepar())
    everything: dict[str, Any] = {}
    for name in args.series.split(","):
        y, events = SERIES[name]()
        span_weeks = int((y.index[-1] - y.index[0]) / pd.Timedelta("7D"))
        weeks = min(args.weeks, span_weeks - 3)
        ctx = registry.ModelContext(timezone=TZ.get(name, "UTC"))
        cfg = BacktestConfig(
            models=models,
            weeks=weeks,
            context=ctx,
            events=tuple(events),
            horizons=tuple(args.horizons.split(",")),
            fit_once=(DEEPAR,),
        )
        t0 = time.perf_counter()
        res = run_backtest(y, cfg)
        print(
            f"\n## {name}: {len(y)} points, {weeks + 1} weekly origins ({time.perf_counter() - t0:.0f} s)\n"
        )
        print(res.markdown(name).split("\n", 2)[2])
        for m in cfg.fit_once:
            ws = [w for w in res.windows if w.model == m]
            if ws:  # the first window holds the only fit
                print(f"{m}: trained once in {ws[0].seconds:.0f} s (fit + first forecast)\n")
        rows = list(res.rows)
        if name == "nyc_taxi":
            blizzard = [
                w
                for w in res.windows
                if w.horizon == "3h" and BLIZZARD[0] <= w.origin <= BLIZZARD[1]
            ]
            print("### blizzard: 3-hour windows starting in the labelled blizzard\n")
            print("| model | windows | MASE | coverage80 |\n|---|---|---|---|")
            for m in models:
                ws = [w for w in blizzard if w.model == m]
                if ws:
                    s = score(ws)
                    rows.append({"model": m, "horizon": "3h", "subset": "blizzard", **s})
                    print(f"| {m} | {s['windows']} | {s['mase']:.2f} | {s['coverage80']:.2f} |")
        ratios(rows, models)
        everything[name] = rows
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1, default=str))
    return 0


def add_deepar() -> str:
    """Register the small DeepAR: one thread, trained once per series before the first origin."""
    import torch

    from rushhour.forecast.deepar import DeepAR

    torch.set_num_threads(1)
    registry.MODELS[DEEPAR] = registry.ModelSpec(
        DEEPAR,
        "DeepAR: context 1 week, hidden 20, 2 layers, 15 epochs x 30 batches, trained once",
        lambda ctx: DeepAR(
            epochs=15,
            num_batches_per_epoch=30,
            hidden_size=20,
            context_length="1w",
            timezone=ctx.timezone,
        ),
        needs="gluonts",
    )
    return DEEPAR


def ratios(rows: list[dict[str, Any]], models: tuple[str, ...]) -> None:
    """MASE of each model relative to the seasonal naive and to the seed's Mean Predictor."""
    print("\n### MASE ratios (normal windows): model / seasonal-naive, model / mean-predictor\n")
    print("| model | 1w vs naive | 3h vs naive | 1w vs MP | 3h vs MP |\n|---|---|---|---|---|")
    get = {(r["model"], r["horizon"]): r["mase"] for r in rows if r["subset"] == "normal"}
    for m in models:
        cells = []
        for base in ("seasonal-naive", "mean-predictor"):
            for h in ("1w", "3h"):
                a, b = get.get((m, h)), get.get((base, h))
                cells.append(f"{a / b:.2f}" if a and b else "-")
        print(f"| {m} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")


def speed() -> None:
    """Mean Predictor fit on a year of 1-minute data, against the adaptive model and a bincount."""
    from rushhour.forecast.adaptive import AdaptiveProfile
    from rushhour.forecast.mean_predictor import MeanPredictor

    y = generate_traffic(
        datetime(2025, 1, 6, tzinfo=UTC), weeks=52, freq="1min", seed=1, anomalies_per_day=0
    ).series.astype(float)
    timings: dict[str, float] = {}
    for name, fit in (
        ("mean-predictor (weekday_weekend)", lambda: MeanPredictor().fit(y)),
        ("mean-predictor (day_of_week)", lambda: MeanPredictor(key="day_of_week").fit(y)),
        ("mean-predictor (holiday)", lambda: MeanPredictor(key="holiday").fit(y)),
        ("adaptive (default forecaster)", lambda: AdaptiveProfile().fit(y)),
        (
            "numpy bincount over the same points",
            lambda: np.bincount(np.arange(len(y)) % 1440, weights=y.to_numpy()),
        ),
    ):
        best = min(_time(fit) for _ in range(3))
        timings[name] = best
    base = timings["numpy bincount over the same points"]
    print(f"\n{len(y):,} one-minute points (52 weeks); best of 3\n")
    print("| fit | seconds | x bincount |\n|---|---|---|")
    for name, t in timings.items():
        print(f"| {name} | {t:.3f} | {t / base:.1f} |")


def _time(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
