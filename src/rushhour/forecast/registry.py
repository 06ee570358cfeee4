"""Forecasters by name: one place that knows every model, its factory and the best default.

The default was chosen by backtest (docs/forecasting.md): ``adaptive``. Optional models (``deepar``,
which needs the ``deepar`` extra) are listed but report whether they can run here.

>>> sorted(MODELS)[:3]
['adaptive', 'deepar', 'holt-winters-add']
>>> type(build("mean-predictor-dow")).__name__
'MeanPredictorAuto'
>>> build("nope")
Traceback (most recent call last):
...
rushhour.errors.UsageError: unknown model 'nope'; choose from adaptive, deepar, holt-winters-add, holt-winters-mul, mean-predictor, mean-predictor-dow, mstl-arima, mstl-ets, seasonal-naive
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from rushhour.errors import UsageError
from rushhour.forecast.base import Forecast, Forecaster
from rushhour.forecast.calendar import infer_step
from rushhour.forecast.mean_predictor import KeyName, MeanPredictor

DEFAULT_MODEL = "adaptive"


@dataclass(frozen=True)
class ModelContext:
    """What every factory may use: the local calendar of the series."""

    timezone: str = "UTC"
    holidays_country: str | None = "US"
    holidays_subdiv: str | None = None


@dataclass
class MeanPredictorAuto:
    """The Mean Predictor at the history's own step (it otherwise assumes 1-minute buckets)."""

    key: KeyName = "weekday_weekend"
    context: ModelContext = field(default_factory=ModelContext)
    model_: MeanPredictor | None = None

    def fit(self, history: pd.Series) -> MeanPredictorAuto:
        step = infer_step(history.dropna().index)
        self.model_ = MeanPredictor(
            key=self.key,
            freq=f"{int(step.total_seconds())}s",
            timezone=self.context.timezone,
            holidays_country=self.context.holidays_country,
            holidays_subdiv=self.context.holidays_subdiv,
        ).fit(history)
        return self

    def predict(self, start: datetime, end: datetime) -> Forecast:
        if self.model_ is None:
            from rushhour.errors import NotFittedError

            raise NotFittedError("the Mean Predictor is not fitted")
        return self.model_.predict(start, end)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    factory: Callable[[ModelContext], Forecaster]
    needs: str | None = None  # an importable module the model needs (an optional extra)

    def available(self) -> bool:
        return self.needs is None or importlib.util.find_spec(self.needs) is not None


def _adaptive(ctx: ModelContext) -> Forecaster:
    from rushhour.forecast.adaptive import AdaptiveProfile

    return AdaptiveProfile(
        timezone=ctx.timezone,
        holidays_country=ctx.holidays_country,
        holidays_subdiv=ctx.holidays_subdiv,
    )


def _hw(seasonal: str) -> Callable[[ModelContext], Forecaster]:
    def make(ctx: ModelContext) -> Forecaster:
        from rushhour.forecast.holt_winters import HoltWinters

        return HoltWinters(seasonal=seasonal)  # type: ignore[arg-type]

    return make


def _mstl(trend: str) -> Callable[[ModelContext], Forecaster]:
    def make(ctx: ModelContext) -> Forecaster:
        from rushhour.forecast.multiseasonal import MultiSeasonal

        return MultiSeasonal(trend=trend)  # type: ignore[arg-type]

    return make


def _naive(ctx: ModelContext) -> Forecaster:
    from rushhour.forecast.naive import SeasonalNaive

    return SeasonalNaive()


def _deepar(ctx: ModelContext) -> Forecaster:
    from rushhour.forecast.deepar import DeepAR

    return DeepAR(
        timezone=ctx.timezone,
        holidays_country=ctx.holidays_country,
        holidays_subdiv=ctx.holidays_subdiv,
    )


def _mp(key: KeyName) -> Callable[[ModelContext], Forecaster]:
    return lambda ctx: MeanPredictorAuto(key=key, context=ctx)


_SPECS = [
    ModelSpec(
        "adaptive", "weekly profile x adaptive level, calibrated intervals (default)", _adaptive
    ),
    ModelSpec("seasonal-naive", "same step last week", _naive),
    ModelSpec(
        "mean-predictor", "the seed's Mean Predictor (weekday/weekend key)", _mp("weekday_weekend")
    ),
    ModelSpec("mean-predictor-dow", "Mean Predictor keyed by day of week", _mp("day_of_week")),
    ModelSpec(
        "holt-winters-mul", "Holt-Winters, multiplicative weekly season, damped trend", _hw("mul")
    ),
    ModelSpec("holt-winters-add", "Holt-Winters, additive weekly season, damped trend", _hw("add")),
    ModelSpec("mstl-ets", "MSTL (daily + weekly) with AutoETS", _mstl("ets")),
    ModelSpec("mstl-arima", "MSTL (daily + weekly) with AutoARIMA", _mstl("arima")),
    ModelSpec("deepar", "GluonTS DeepAR on torch (extra `deepar`)", _deepar, needs="gluonts"),
]
MODELS: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


def build(name: str, context: ModelContext | None = None, **_: Any) -> Forecaster:
    """A fresh, unfitted forecaster for ``name``."""
    spec = MODELS.get(name)
    if spec is None:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}")
    if not spec.available():
        raise UsageError(
            f"model {name!r} needs the optional module {spec.needs!r}",
            hint="pip install 'rushhour[deepar]'",
        )
    return spec.factory(context or ModelContext())
