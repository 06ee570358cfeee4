"""Rolling-origin backtest: every model forecasts from the same origins, scored on what followed.

Origins: the last week of the series is held out, plus ``weeks`` earlier weekly origins. Two horizons
by default: ``1w`` from each weekly origin, and ``3h`` from origins every ``6h`` across the same span.
A model only ever sees the history strictly before its origin. Models are fitted at each weekly
origin; for the short horizon, a model that can ``update`` (re-run its filter with the fitted
parameters, or take new context) does so at each origin, and the others are refitted. Models named
in ``fit_once`` (slow to train: DeepAR) are fitted once, on the history before the first origin, and
only updated with the history before each later origin. Windows that
touch a public holiday or a given event are scored separately (``subset``: ``normal`` or
``holiday``), and together (``all``).

>>> from datetime import datetime, UTC
>>> from rushhour.series.generate import generate_traffic
>>> y = generate_traffic(datetime(2026, 2, 2, tzinfo=UTC), weeks=5, freq="1h", seed=3,
...                      anomalies_per_day=0).series
>>> res = run_backtest(y, BacktestConfig(models=("seasonal-naive", "adaptive"), weeks=1))
>>> sorted({(r["model"], r["horizon"]) for r in res.rows if r["subset"] == "all"})
[('adaptive', '1w'), ('adaptive', '3h'), ('seasonal-naive', '1w'), ('seasonal-naive', '3h')]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rushhour.errors import InputError, UsageError
from rushhour.forecast import metrics
from rushhour.forecast.base import Forecast, Forecaster, check_history
from rushhour.forecast.calendar import WEEK, holiday_mask, infer_step, regular, season_steps
from rushhour.forecast.registry import DEFAULT_MODEL, ModelContext, build
from rushhour.timeutil import parse_duration

Progress = Callable[[int, int, str], None]
COLUMNS = (
    "model",
    "horizon",
    "subset",
    "windows",
    "rmse",
    "mae",
    "mase",
    "smape",
    "coverage80",
    "width80",
    "coverage95",
    "width95",
    "seconds",
)


@dataclass(frozen=True)
class BacktestConfig:
    """``models`` by registry name; ``weeks`` earlier weekly origins besides the last week;
    ``horizons`` with the spacing of their origins (a horizon of a week or more uses weekly origins);
    ``events``: extra (start, end) windows scored with the holidays; ``fit_once``: models trained
    once before the first origin and then only given the newer history (they need ``update``)."""

    models: tuple[str, ...] = (
        "seasonal-naive",
        "mean-predictor",
        "mean-predictor-dow",
        "holt-winters-mul",
        "holt-winters-add",
        "mstl-ets",
        DEFAULT_MODEL,
    )
    weeks: int = 4
    horizons: tuple[str, ...] = ("1w", "3h")
    short_every: str = "6h"
    season: str = "1w"
    context: ModelContext = field(default_factory=ModelContext)
    events: tuple[tuple[datetime, datetime], ...] = ()
    fit_once: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.weeks < 0:
            raise UsageError(f"weeks must be >= 0, got {self.weeks}")
        if not self.models:
            raise UsageError("give at least one model")
        for h in self.horizons:
            if parse_duration(h) > parse_duration("1w"):
                raise UsageError(f"horizons must be at most 1w, got {h}")


@dataclass
class Window:
    model: str
    horizon: str
    origin: pd.Timestamp
    holiday: bool
    actual: np.ndarray
    forecast: Forecast
    scale: float
    seconds: float


@dataclass
class BacktestResult:
    rows: list[dict[str, Any]]
    windows: list[Window]
    series: pd.Series
    config: BacktestConfig

    def table(self, subset: str = "all") -> list[dict[str, Any]]:
        return [r for r in self.rows if r["subset"] == subset]

    def markdown(self, title: str = "Backtest") -> str:
        lines = [f"## {title}", ""]
        for subset in ("all", "normal", "holiday"):
            rows = self.table(subset)
            if not rows:
                continue
            lines += [f"### {subset} windows", "", markdown_table(rows), ""]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        cfg = asdict(self.config)
        cfg["events"] = [[a.isoformat(), b.isoformat()] for a, b in self.config.events]
        rows = [{k: _finite(v) for k, v in r.items()} for r in self.rows]
        return {"config": cfg, "rows": rows}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if not np.isfinite(v):
            return "-"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def origins(series: pd.Series, config: BacktestConfig) -> tuple[list[pd.Timestamp], pd.Timestamp]:
    """Weekly origins (oldest first) and the end of the data (one step past the last point)."""
    step = infer_step(series.index)
    end = series.index[-1] + step
    weekly = [end - WEEK * (k + 1) for k in range(config.weeks + 1)][::-1]
    if weekly[0] - series.index[0] < 2 * WEEK:
        raise InputError(
            f"the backtest needs two weeks of history before its first origin {weekly[0]}",
            source="series",
            hint="pass fewer --weeks or a longer series",
        )
    return weekly, end


def run_backtest(
    series: pd.Series, config: BacktestConfig, progress: Progress | None = None
) -> BacktestResult:
    """Backtest ``config.models`` on ``series`` (a UTC-indexed Series)."""
    config.validate()
    y = check_history(series, source="series", min_points=2).dropna()
    step = infer_step(y.index)
    y = regular(y, step)
    weekly, end = origins(y, config)
    season = season_steps(step, config.season)
    plans: list[tuple[str, pd.Timestamp, pd.Timedelta]] = []
    for h in config.horizons:
        span = pd.Timedelta(parse_duration(h))
        if span >= WEEK:
            plans += [(h, o, span) for o in weekly]
        else:
            every = pd.Timedelta(parse_duration(config.short_every))
            o = weekly[0]
            while o + span <= end:
                plans.append((h, o, span))
                o += every
    total = len(plans) * len(config.models)
    windows: list[Window] = []
    done = 0
    for name in config.models:
        fitted: dict[pd.Timestamp, Forecaster] = {}
        for h, origin, span in plans:
            past = y[y.index < origin]
            t0 = time.perf_counter()
            if name in config.fit_once and fitted:
                model = _updated(next(iter(fitted.values())), past)
            else:
                model = _model_at(name, origin, past, weekly, fitted, config.context)
            fc = model.predict(origin.to_pydatetime(), (origin + span).to_pydatetime())
            seconds = time.perf_counter() - t0
            actual = y.reindex(fc.index).to_numpy(dtype=float)
            scale = metrics.mase_scale(past.to_numpy(dtype=float), season)
            windows.append(
                Window(name, h, origin, _special(fc.index, config), actual, fc, scale, seconds)
            )
            done += 1
            if progress:
                progress(done, total, f"{name} {h} from {origin:%Y-%m-%d %H:%M}")
    return BacktestResult(_rows(windows, config), windows, y, config)


def _model_at(
    name: str,
    origin: pd.Timestamp,
    past: pd.Series,
    weekly: list[pd.Timestamp],
    fitted: dict[pd.Timestamp, Forecaster],
    context: ModelContext,
) -> Forecaster:
    """Fit at weekly origins; between them, update the last weekly fit when the model can."""
    anchor = max((w for w in weekly if w <= origin), default=weekly[0])
    if anchor == origin or anchor not in fitted:
        model = build(name, context).fit(past[past.index < anchor] if anchor < origin else past)
        fitted[anchor] = model
        if anchor == origin:
            return model
    model = fitted[anchor]
    if callable(getattr(model, "update", None)):
        return _updated(model, past)
    return build(name, context).fit(past)


def _updated(model: Forecaster, past: pd.Series) -> Forecaster:
    """A fitted model given the newer history without refitting (``fit_once`` models)."""
    update = getattr(model, "update", None)
    if not callable(update):
        raise UsageError(
            f"{type(model).__name__} cannot be fitted once: it has no update method",
            hint="leave it out of fit_once",
        )
    result: Forecaster = update(past)
    return result


def _special(index: pd.DatetimeIndex, config: BacktestConfig) -> bool:
    ctx = config.context
    if holiday_mask(index, ctx.timezone, ctx.holidays_country, ctx.holidays_subdiv).any():
        return True
    return any(
        bool(((index >= pd.Timestamp(a)) & (index <= pd.Timestamp(b))).any())
        for a, b in config.events
    )


def _rows(windows: list[Window], config: BacktestConfig) -> list[dict[str, Any]]:
    rows = []
    for subset in ("all", "normal", "holiday"):
        for name in config.models:
            for h in config.horizons:
                ws = [
                    w
                    for w in windows
                    if w.model == name
                    and w.horizon == h
                    and (subset == "all" or w.holiday == (subset == "holiday"))
                ]
                if ws:
                    rows.append({"model": name, "horizon": h, "subset": subset, **score(ws)})
    return rows


def score(windows: list[Window]) -> dict[str, Any]:
    """Metrics pooled over windows; MASE is the mean of each window's MAE over its own scale."""
    actual = np.concatenate([w.actual for w in windows])
    mean = np.concatenate([w.forecast.mean for w in windows])
    lo80, hi80 = (
        np.concatenate(p)
        for p in zip(*(metrics.interval(w.forecast, 0.8) for w in windows), strict=True)
    )
    lo95, hi95 = (
        np.concatenate(p)
        for p in zip(*(metrics.interval(w.forecast, 0.95) for w in windows), strict=True)
    )
    mases = [metrics.mae(w.actual, w.forecast.mean) / w.scale for w in windows if w.scale > 0]
    return {
        "windows": len(windows),
        "rmse": metrics.rmse(actual, mean),
        "mae": metrics.mae(actual, mean),
        "mase": float(np.nanmean(mases)) if mases else float("nan"),
        "smape": metrics.smape(actual, mean),
        "coverage80": metrics.coverage(actual, lo80, hi80),
        "width80": metrics.width(lo80, hi80),
        "coverage95": metrics.coverage(actual, lo95, hi95),
        "width95": metrics.width(lo95, hi95),
        "seconds": float(np.mean([w.seconds for w in windows])),
    }


def save(result: BacktestResult, directory: Path, title: str = "Backtest") -> dict[str, Path]:
    """Write ``backtest.md``, ``backtest.json`` and ``backtest.png`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / "backtest.md"
    md.write_text(result.markdown(title) + "\n")
    js = directory / "backtest.json"
    js.write_text(json.dumps(result.to_json(), indent=2, default=_nan_none) + "\n")
    png = plot(result, directory / "backtest.png")
    return {"markdown": md, "json": js, "plot": png}


def _nan_none(v: Any) -> Any:
    return str(v)


def _finite(v: Any) -> Any:
    """NaN is not JSON: metrics that could not be computed become null."""
    return None if isinstance(v, float) and not np.isfinite(v) else v


def plot(result: BacktestResult, path: Path) -> Path:
    """The last week held out: the actuals against each model's forecast (80% band of the default)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = max(result.config.horizons, key=lambda h: parse_duration(h))
    last = max((w.origin for w in result.windows if w.horizon == longest), default=None)
    fig, ax = plt.subplots(figsize=(12, 5))
    shown = False
    for w in result.windows:
        if w.horizon != longest or w.origin != last:
            continue
        if not shown:
            ax.plot(w.forecast.index, w.actual, color="black", lw=1.2, label="actual")
            shown = True
        ax.plot(w.forecast.index, w.forecast.mean, lw=0.8, label=w.model)
        if w.model == DEFAULT_MODEL:
            lo, hi = metrics.interval(w.forecast, 0.8)
            ax.fill_between(w.forecast.index, lo, hi, alpha=0.2, label=f"{w.model} 80%")
    ax.set_title(f"forecast from {last} over {longest}")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
