"""The weekly seasonal naive forecast: the value at the same step a week (or ``period``) earlier.

It is the yardstick of MASE, and a peer in every backtest. Intervals come from the empirical
quantiles of its in-sample errors.

>>> from datetime import datetime, UTC
>>> import pandas as pd
>>> idx = pd.date_range("2026-01-05", periods=14 * 48, freq="30min", tz="UTC")
>>> hist = pd.Series(range(len(idx)), index=idx, dtype=float)
>>> fc = SeasonalNaive().fit(hist).predict(datetime(2026, 1, 19, tzinfo=UTC),
...                                          datetime(2026, 1, 19, 1, tzinfo=UTC))
>>> fc.mean.tolist()   # a week before 2026-01-19 00:00 is step 336
[336.0, 337.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from rushhour.errors import NotFittedError
from rushhour.forecast.adaptive import QUANTILES
from rushhour.forecast.base import Forecast, check_history, step_index
from rushhour.forecast.calendar import infer_step, regular, season_steps

_Z90 = 1.2815515655446004


@dataclass
class SeasonalNaive:
    """``period``: the season, ``1w`` by default."""

    period: str = "1w"
    quantiles: tuple[float, ...] = QUANTILES
    step_: pd.Timedelta | None = field(default=None, repr=False)
    season_: np.ndarray | None = field(default=None, repr=False)
    last_: pd.Timestamp | None = field(default=None, repr=False)
    errors_: np.ndarray | None = field(default=None, repr=False)

    def fit(self, history: pd.Series) -> SeasonalNaive:
        values = check_history(history, min_points=2).dropna()
        step = infer_step(values.index)
        m = season_steps(step, self.period)
        y = regular(values, step).ffill().to_numpy()
        self.step_, self.last_ = step, regular(values, step).index[-1]
        self.season_ = y[-m:] if len(y) >= m else np.resize(y, m)
        diff = y[m:] - y[:-m] if len(y) > m else np.zeros(1)
        self.errors_ = np.quantile(diff, self.quantiles)
        return self

    def predict(self, start: datetime, end: datetime) -> Forecast:
        if self.season_ is None or self.step_ is None or self.last_ is None:
            raise NotFittedError("the seasonal naive forecaster is not fitted")
        assert self.errors_ is not None
        index = step_index(start, end, self.step_)
        m = len(self.season_)
        h = np.asarray((index - self.last_) / self.step_, dtype=np.int64)
        mean = self.season_[(h - 1) % m]
        qs = {
            q: np.maximum(mean + e, 0.0) for q, e in zip(self.quantiles, self.errors_, strict=True)
        }
        std = (qs[0.9] - qs[0.1]) / (2 * _Z90) if 0.1 in qs and 0.9 in qs else np.zeros_like(mean)
        return Forecast(index=index, mean=mean.astype(float), std=std, quantiles=qs)
