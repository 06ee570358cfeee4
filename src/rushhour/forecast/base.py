"""The forecaster contract shared by every model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from rushhour.errors import InputError
from rushhour.timeutil import utc

DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class Forecast:
    """Point forecasts with uncertainty on a UTC index."""

    index: pd.DatetimeIndex
    mean: np.ndarray
    std: np.ndarray
    quantiles: dict[float, np.ndarray]

    def to_frame(self) -> pd.DataFrame:
        """The seed's contract ``Timestamp,Value,Std`` plus one ``q<level>`` column per quantile."""
        data: dict[str, Any] = {"Timestamp": self.index, "Value": self.mean, "Std": self.std}
        for q, values in sorted(self.quantiles.items()):
            data[quantile_column(q)] = values
        return pd.DataFrame(data)

    @classmethod
    def gaussian(
        cls,
        index: pd.DatetimeIndex,
        mean: np.ndarray,
        std: np.ndarray,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    ) -> Forecast:
        """Quantiles from a normal distribution around ``mean`` (counts are clipped at 0)."""
        from scipy.special import ndtri  # imported here: scipy is off the live pipeline's start

        qs = {q: np.maximum(mean + ndtri(q) * std, 0.0) for q in quantiles}
        return cls(index=index, mean=mean, std=std, quantiles=qs)


def quantile_column(q: float) -> str:
    """``0.9 -> 'q0.9'``."""
    return f"q{q:g}"


@runtime_checkable
class Forecaster(Protocol):
    """Anything with ``fit`` and ``predict``."""

    def fit(self, history: pd.Series) -> Forecaster: ...

    def predict(self, start: datetime, end: datetime) -> Forecast: ...


def check_history(history: pd.Series, *, source: str = "history", min_points: int = 1) -> pd.Series:
    """Validate a history series: UTC DatetimeIndex, numeric, sorted; returns it sorted as float."""
    if not isinstance(history.index, pd.DatetimeIndex):
        raise InputError("the series must be indexed by timestamps", source=source)
    if history.index.tz is None:
        raise InputError(
            "timestamps must be timezone-aware",
            source=source,
            hint="localize the index to UTC (rushhour keeps UTC inside)",
        )
    values = pd.to_numeric(history, errors="coerce").astype(float)
    values = values.sort_index()
    if values.notna().sum() < min_points:
        raise InputError(
            f"need at least {min_points} observed points, got {int(values.notna().sum())}",
            source=source,
            hint="give the model more history",
        )
    return values


def step_index(start: datetime, end: datetime, freq: pd.Timedelta) -> pd.DatetimeIndex:
    """The half-open range ``[start, end)`` at ``freq``, aligned to the epoch, in UTC."""
    s = pd.Timestamp(utc(start)).ceil(freq)
    return pd.date_range(s, pd.Timestamp(utc(end)), freq=freq, inclusive="left")
