"""MSTL (statsforecast): daily and weekly seasons together, with AutoETS or AutoARIMA on what is left.

MSTL peels a daily and a weekly season off the series (STL, one season after the other) and forecasts
the deseasonalised remainder with ``trend``: ``ets`` (AutoETS, no season) or ``arima`` (AutoARIMA).
Intervals are statsforecast's 80% and 95% prediction intervals; the 5% and 95% quantiles in between
are interpolated on the normal scale. statsforecast is imported on first fit (it compiles with numba).

>>> from datetime import datetime, UTC
>>> from rushhour.series.generate import generate_traffic
>>> hist = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), weeks=3, freq="1h",
...                         seed=1, anomalies_per_day=0).series
>>> fc = MultiSeasonal().fit(hist).predict(datetime(2026, 1, 26, tzinfo=UTC),
...                                        datetime(2026, 1, 26, 2, tzinfo=UTC))
>>> sorted(fc.quantiles)[:2], len(fc.mean)
([0.025, 0.05], 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from rushhour.errors import InputError, NotFittedError, UsageError
from rushhour.forecast.base import Forecast, check_history, step_index
from rushhour.forecast.calendar import infer_step, regular, season_steps

_Z = {0.8: 1.2815515655446004, 0.95: 1.959963984540054}


@dataclass
class MultiSeasonal:
    """Parameters: ``seasons`` (durations, shortest first), ``trend`` (``ets`` or ``arima``),
    ``max_weeks`` (history used)."""

    seasons: tuple[str, ...] = ("1d", "1w")
    trend: Literal["ets", "arima"] = "ets"
    max_weeks: int = 8
    step_: pd.Timedelta | None = field(default=None, repr=False)
    model_: Any = field(default=None, repr=False)
    last_: pd.Timestamp | None = field(default=None, repr=False)

    def fit(self, history: pd.Series) -> MultiSeasonal:
        if self.trend not in ("ets", "arima"):
            raise UsageError(f"trend must be 'ets' or 'arima', got {self.trend!r}")
        from statsforecast.models import MSTL, AutoARIMA, AutoETS

        values = check_history(history, min_points=2).dropna()
        step = infer_step(values.index)
        lengths = [season_steps(step, s) for s in self.seasons]
        y = regular(values, step).interpolate(limit_direction="both")
        y = y.iloc[-self.max_weeks * int(pd.Timedelta("7D") / step) :]
        if len(y) < 2 * max(lengths):
            raise InputError(
                f"MSTL needs two of its longest seasons ({2 * max(lengths)} steps), got {len(y)}",
                source="history",
                hint="give more history",
            )
        trend = AutoETS(model="ZZN") if self.trend == "ets" else AutoARIMA()
        self.model_ = MSTL(season_length=lengths, trend_forecaster=trend).fit(
            y.to_numpy(dtype=float)
        )
        self.step_, self.last_ = step, y.index[-1]
        return self

    def predict(self, start: datetime, end: datetime) -> Forecast:
        if self.model_ is None or self.step_ is None or self.last_ is None:
            raise NotFittedError("the MSTL model is not fitted")
        index = step_index(start, end, self.step_)
        h = np.asarray((index - self.last_) / self.step_, dtype=np.int64)
        n = int(max(h.max(initial=1), 1))
        raw = self.model_.predict(n, level=[80, 95])
        pick = np.clip(h, 1, n) - 1
        mean = np.asarray(raw["mean"])[pick]
        std80 = (np.asarray(raw["hi-80"])[pick] - np.asarray(raw["lo-80"])[pick]) / (2 * _Z[0.8])
        qs = {
            0.025: np.asarray(raw["lo-95"])[pick],
            0.05: mean - 1.6448536269514722 * std80,
            0.1: np.asarray(raw["lo-80"])[pick],
            0.5: mean,
            0.9: np.asarray(raw["hi-80"])[pick],
            0.95: mean + 1.6448536269514722 * std80,
            0.975: np.asarray(raw["hi-95"])[pick],
        }
        qs = {q: np.maximum(v, 0.0) for q, v in qs.items()}
        return Forecast(index=index, mean=np.maximum(mean, 0.0), std=std80, quantiles=qs)
