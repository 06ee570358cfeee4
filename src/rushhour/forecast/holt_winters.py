"""Holt-Winters (statsmodels ``ExponentialSmoothing``): additive or multiplicative season, damped trend.

The seed's Holt-Winters averaged weekdays with weekends; here the season is a week of steps by default
(``seasonal_periods``: ``1w`` = 336 for 30-minute data), so Monday and Sunday keep their own shapes.
Gaps are filled by interpolation before fitting. Intervals are Gaussian around the point forecast,
with the in-sample one-step error growing with the horizon as in simple exponential smoothing.
:meth:`update` re-runs the filter over new data with the fitted smoothing parameters, which is how a
backtest moves the origin without re-optimising. :func:`plot_decomposition` draws level and trend,
season and residual as a PNG.

>>> from datetime import datetime, UTC
>>> from rushhour.series.generate import generate_traffic
>>> hist = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), weeks=3, freq="1h",
...                         seed=1, anomalies_per_day=0).series
>>> hw = HoltWinters(seasonal="mul", seasonal_periods="1d").fit(hist)
>>> fc = hw.predict(datetime(2026, 1, 26, tzinfo=UTC), datetime(2026, 1, 26, 3, tzinfo=UTC))
>>> len(fc.mean), bool((fc.std > 0).all())
(3, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rushhour.errors import InputError, NotFittedError, UsageError
from rushhour.forecast.adaptive import QUANTILES
from rushhour.forecast.base import Forecast, check_history, step_index
from rushhour.forecast.calendar import infer_step, regular, season_steps


@dataclass
class HoltWinters:
    """Parameters: ``seasonal`` (``add`` or ``mul``), ``seasonal_periods`` (a duration such as ``1w``
    or ``1d``), ``trend`` (``add`` or None), ``damped_trend``, and ``max_weeks`` (history used, for
    speed: the optimiser's cost grows with the length)."""

    seasonal: Literal["add", "mul"] = "mul"
    seasonal_periods: str = "1w"
    trend: Literal["add"] | None = "add"
    damped_trend: bool = True
    max_weeks: int = 6
    quantiles: tuple[float, ...] = QUANTILES
    step_: pd.Timedelta | None = field(default=None, repr=False)
    params_: dict[str, float] | None = field(default=None, repr=False)
    result_: Any = field(default=None, repr=False)
    last_: pd.Timestamp | None = field(default=None, repr=False)
    sigma_: float = field(default=0.0, repr=False)

    def _validate(self) -> None:
        if self.seasonal not in ("add", "mul"):
            raise UsageError(f"seasonal must be 'add' or 'mul', got {self.seasonal!r}")
        if self.trend not in ("add", None):
            raise UsageError(f"trend must be 'add' or None, got {self.trend!r}")
        if self.max_weeks < 2:
            raise UsageError(f"max_weeks must be >= 2, got {self.max_weeks}")

    def _prepare(self, history: pd.Series) -> tuple[pd.Series, int]:
        values = check_history(history, min_points=2).dropna()
        step = infer_step(values.index)
        m = season_steps(step, self.seasonal_periods)
        y = regular(values, step).interpolate(limit_direction="both")
        y = y.iloc[-self.max_weeks * int(pd.Timedelta("7D") / step) :]
        if len(y) < 2 * m:
            raise InputError(
                f"Holt-Winters needs two seasons of history ({2 * m} steps), got {len(y)}",
                source="history",
                hint="give more history or a shorter seasonal_periods",
            )
        if self.seasonal == "mul":
            # a multiplicative season cannot hold zeros: lift them to a small positive floor
            y = y.clip(lower=max(float(y[y > 0].min()) * 0.1, 1e-3) if (y > 0).any() else 1e-3)
        self.step_ = step
        return y, m

    def _model(self, y: pd.Series, m: int) -> Any:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        return ExponentialSmoothing(
            y.to_numpy(),
            trend=self.trend,
            damped_trend=self.damped_trend if self.trend else False,
            seasonal=self.seasonal,
            seasonal_periods=m,
            initialization_method="estimated" if self.params_ is None else "heuristic",
        )

    def fit(self, history: pd.Series) -> HoltWinters:
        """Optimise the smoothing parameters on ``history``."""
        self._validate()
        self.params_ = None
        y, m = self._prepare(history)
        result = self._model(y, m).fit(optimized=True)
        self.params_ = {
            k: float(v)
            for k, v in result.params.items()
            if k in ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")
            and v is not None
            and np.isfinite(v)
        }
        self._keep(result, y)
        return self

    def update(self, history: pd.Series) -> HoltWinters:
        """Re-run the filter on ``history`` with the fitted parameters (no optimisation)."""
        if self.params_ is None:
            return self.fit(history)
        y, m = self._prepare(history)
        result = self._model(y, m).fit(optimized=False, **self.params_)
        self._keep(result, y)
        return self

    def _keep(self, result: Any, y: pd.Series) -> None:
        self.result_ = result
        self.last_ = y.index[-1]
        resid = y.to_numpy() - np.asarray(result.fittedvalues)
        tail = resid[len(resid) // 4 :]
        self.sigma_ = float(np.std(tail[np.isfinite(tail)])) if len(tail) else 0.0

    def predict(self, start: datetime, end: datetime) -> Forecast:
        if self.result_ is None or self.step_ is None or self.last_ is None:
            raise NotFittedError("the Holt-Winters model is not fitted")
        index = step_index(start, end, self.step_)
        h = np.asarray((index - self.last_) / self.step_, dtype=np.int64)
        n = int(max(h.max(initial=1), 1))
        path = np.asarray(self.result_.forecast(n))
        mean = np.maximum(path[np.clip(h, 1, n) - 1], 0.0)
        alpha = float((self.params_ or {}).get("smoothing_level", 0.5))
        std = self.sigma_ * np.sqrt(1 + (np.clip(h, 1, None) - 1) * alpha**2)
        return Forecast.gaussian(index, mean, std, self.quantiles)


def plot_decomposition(model: HoltWinters, path: Path, *, title: str = "Holt-Winters") -> Path:
    """Level (+trend), season and residual of the fitted model, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if model.result_ is None or model.step_ is None or model.last_ is None:
        raise NotFittedError("the Holt-Winters model is not fitted")
    r = model.result_
    n = len(r.level)
    index = pd.date_range(end=model.last_, periods=n, freq=model.step_)
    observed = np.asarray(r.model.endog)
    parts = [
        ("observed", observed),
        (
            "level + trend",
            np.asarray(r.level) + (np.asarray(r.trend) if r.trend is not None else 0),
        ),
        ("season", np.asarray(r.season)),
        ("residual", observed - np.asarray(r.fittedvalues)),
    ]
    fig, axes = plt.subplots(len(parts), 1, figsize=(11, 8), sharex=True)
    for ax, (name, values) in zip(axes, parts, strict=True):
        ax.plot(index, values, lw=0.7)
        ax.set_ylabel(name)
    axes[0].set_title(f"{title} ({model.seasonal}, season {model.seasonal_periods})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
