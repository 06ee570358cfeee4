"""The Mean Predictor of the seed report: expected value and deviation per timestamp-hash bucket.

Each timestamp is hashed to a key in local time; by default the seed's
``(weekday < 5, hour, minute)``. The model is a table of mean and deviation per key. It forecasts by
looking the key up, and it doubles as the seasonal baseline of anomaly detection: a point is anomalous
when it lies outside ``mean ± k·deviation``.

>>> from datetime import datetime, UTC
>>> from rushhour.series.generate import generate_traffic
>>> hist = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), weeks=3, seed=2, anomalies_per_day=0).series
>>> mp = MeanPredictor().fit(hist)
>>> fc = mp.predict(datetime(2026, 1, 26, 8, 0, tzinfo=UTC), datetime(2026, 1, 26, 8, 3, tzinfo=UTC))
>>> list(fc.to_frame().columns)
['Timestamp', 'Value', 'Std', 'q0.1', 'q0.5', 'q0.9']
>>> bool(fc.mean[0] > 5000)   # Monday 08:00 is rush hour
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from rushhour.errors import NotFittedError, UsageError
from rushhour.forecast.base import Forecast, check_history, step_index
from rushhour.series.generate import day_classes
from rushhour.timeutil import utc, zone

KeyName = Literal["weekday_weekend", "day_of_week", "holiday"]
_MINUTES = 1440
_N_CLASSES = {"weekday_weekend": 2, "day_of_week": 7, "holiday": 3}
DAY_CLASSES = _N_CLASSES  # day classes (rows of 1440 minutes) per key
SNAPSHOT_VERSION = 1


@dataclass
class MeanPredictor:
    """Mean and deviation per timestamp key.

    Parameters (stored as given; validated in ``fit``):

    * ``key``: ``weekday_weekend`` (the seed's), ``day_of_week``, or ``holiday`` (weekday, weekend and
      public holiday, with holidays falling back to the weekend profile until they have data).
    * ``deviation``: ``std`` (standard deviation) or ``mad`` (mean absolute deviation).
    * ``smooth``: width, in key steps, of a centred moving average over the table (1: none). Smoothing
      across neighbouring minutes steadies estimates made from few weeks.
    * ``min_deviation``: floor of the deviation, so that a constant history does not give a zero band.
    """

    key: KeyName = "weekday_weekend"
    deviation: Literal["std", "mad"] = "std"
    timezone: str = "UTC"
    freq: str = "1min"
    smooth: int = 1
    min_deviation: float = 1.0
    holidays_country: str | None = "US"
    holidays_subdiv: str | None = None
    mean_: np.ndarray | None = field(default=None, repr=False)
    dev_: np.ndarray | None = field(default=None, repr=False)
    count_: np.ndarray | None = field(default=None, repr=False)
    trained_at_: datetime | None = field(default=None, repr=False)

    # -- fitting --------------------------------------------------------------------------------
    def fit(
        self,
        history: pd.Series,
        exclude: Iterable[tuple[datetime, datetime]] = (),
        exclude_holidays: bool = False,
    ) -> MeanPredictor:
        """Learn the table from ``history``, leaving out ``exclude`` windows (inclusive) and NaNs."""
        self._validate()
        values = check_history(history, min_points=1)
        keep = values.notna().to_numpy()
        for lo, hi in exclude:
            keep &= ~(
                (values.index >= pd.Timestamp(utc(lo))) & (values.index <= pd.Timestamp(utc(hi)))
            )
        codes = self.codes(values.index)
        if exclude_holidays:
            keep &= self._classes(values.index) != 2
        x = values.to_numpy()[keep]
        c = codes[keep]
        size = _N_CLASSES[self.key] * _MINUTES
        n = np.bincount(c, minlength=size).astype(float)
        s = np.bincount(c, weights=x, minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
            if self.deviation == "std":
                ss = np.bincount(c, weights=(x - mean[c]) ** 2, minlength=size)
                dev = np.sqrt(ss / np.maximum(n - 1, 1))
            else:
                dev = np.bincount(c, weights=np.abs(x - mean[c]), minlength=size) / n
        mean = np.where(n > 0, mean, np.nan)
        dev = np.where(n > 1, dev, np.nan)
        if self.smooth > 1:
            mean, dev = _smooth(mean, self.smooth), _smooth(dev, self.smooth)
        # float32 tables: thousands of series' models stay small in memory
        self.mean_, self.dev_ = mean.astype(np.float32), dev.astype(np.float32)
        self.count_ = n.astype(np.int32)
        self.trained_at_ = values.index[-1].to_pydatetime()
        return self

    def _validate(self) -> None:
        if self.key not in _N_CLASSES:
            raise UsageError(f"key must be one of {sorted(_N_CLASSES)}, got {self.key!r}")
        if self.deviation not in ("std", "mad"):
            raise UsageError(f"deviation must be 'std' or 'mad', got {self.deviation!r}")
        if self.smooth < 1:
            raise UsageError(f"smooth must be >= 1, got {self.smooth}")
        zone(self.timezone)

    # -- keys -----------------------------------------------------------------------------------
    def _classes(self, index: pd.DatetimeIndex) -> np.ndarray:
        return day_classes(index, self.timezone, self.holidays_country, self.holidays_subdiv)

    def codes(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Integer key per timestamp: ``day_class * 1440 + minute_of_day`` in local time."""
        local = index.tz_convert(zone(self.timezone))
        minute = (local.hour * 60 + local.minute).to_numpy()
        if self.key == "day_of_week":
            cls = local.dayofweek.to_numpy()
        elif self.key == "weekday_weekend":
            cls = (local.dayofweek < 5).astype(int)
            cls = np.asarray(cls)
        else:
            cls = self._classes(index)
        return np.asarray(cls, dtype=np.int64) * _MINUTES + minute

    def signature(self) -> tuple[object, ...]:
        """The parameters that decide :meth:`codes`: models that share it share codes."""
        return (self.key, self.timezone, self.holidays_country, self.holidays_subdiv)

    # -- prediction -----------------------------------------------------------------------------
    def expected(self, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """Mean and deviation for each timestamp (NaN where a key never had data)."""
        return self.lookup(self.codes(index))

    def lookup(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and deviation for precomputed :meth:`codes` (many series share one set of codes)."""
        if self.mean_ is None or self.dev_ is None:
            raise NotFittedError("the Mean Predictor is not fitted")
        mean = self.mean_[codes].astype(float)
        dev = self.dev_[codes].astype(float)
        if self.key == "holiday":
            # a holiday without its own data uses the weekend profile (class 0)
            fallback = codes % _MINUTES
            mean = np.where(np.isnan(mean), self.mean_[fallback], mean)
            dev = np.where(np.isnan(dev), self.dev_[fallback], dev)
        dev = np.where(np.isnan(dev), np.nan, np.maximum(dev, self.min_deviation))
        return mean, dev

    def tables(self) -> tuple[np.ndarray, np.ndarray]:  # (may be views of the model's arrays)
        """Mean and deviation tables as ``(day classes, 1440)`` float32 rows, the holiday fallback
        of :meth:`lookup` already applied: ``tables()[i][code // 1440, code % 1440]`` is what
        :meth:`lookup` reads for ``code`` before the ``min_deviation`` floor."""
        if self.mean_ is None or self.dev_ is None:
            raise NotFittedError("the Mean Predictor is not fitted")
        mean = self.mean_.reshape(-1, _MINUTES)
        dev = self.dev_.reshape(-1, _MINUTES)
        if self.key == "holiday":
            # a slot without data (a holiday's, mostly) uses the weekend profile (class 0)
            mean = np.where(np.isnan(mean), mean[0], mean)
            dev = np.where(np.isnan(dev), dev[0], dev)
        return mean, dev

    def params(self) -> dict[str, Any]:
        """The constructor parameters (no tables): ``MeanPredictor(**params())`` is unfitted."""
        return {
            "key": self.key,
            "deviation": self.deviation,
            "timezone": self.timezone,
            "freq": self.freq,
            "smooth": self.smooth,
            "min_deviation": self.min_deviation,
            "holidays_country": self.holidays_country,
            "holidays_subdiv": self.holidays_subdiv,
        }

    def predict(self, start: datetime, end: datetime) -> Forecast:
        """Forecast for ``[start, end)`` at the model frequency: the seed's ``Timestamp,Value,Std``."""
        index = step_index(start, end, pd.Timedelta(self.freq))
        mean, dev = self.expected(index)
        return Forecast.gaussian(index, mean, dev)

    # -- state ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain-data state (JSON-safe), restorable with :meth:`restore`."""
        if self.mean_ is None or self.dev_ is None or self.count_ is None:
            raise NotFittedError("the Mean Predictor is not fitted; nothing to snapshot")
        return {
            "kind": "mean_predictor",
            "version": SNAPSHOT_VERSION,
            "params": self.params(),
            "mean": _nan_list(self.mean_.astype(float)),
            "dev": _nan_list(self.dev_.astype(float)),
            "count": self.count_.astype(int).tolist(),
            "trained_at": self.trained_at_.isoformat() if self.trained_at_ else None,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> MeanPredictor:
        """Rebuild a fitted model from :meth:`snapshot` output."""
        if state.get("kind") != "mean_predictor" or state.get("version") != SNAPSHOT_VERSION:
            raise UsageError(
                f"not a version-{SNAPSHOT_VERSION} Mean Predictor snapshot "
                f"(kind={state.get('kind')!r}, version={state.get('version')!r})",
                hint="retrain the model with `rushhour train`",
            )
        model = cls(**state["params"])
        model.mean_ = np.array(
            [np.nan if v is None else v for v in state["mean"]], dtype=np.float32
        )
        model.dev_ = np.array([np.nan if v is None else v for v in state["dev"]], dtype=np.float32)
        model.count_ = np.asarray(state["count"], dtype=np.int32)
        ts = state.get("trained_at")
        model.trained_at_ = datetime.fromisoformat(ts) if ts else None
        return model


def _smooth(table: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average within each day class, wrapping around midnight, ignoring NaN."""
    rows = table.reshape(-1, _MINUTES)
    pad = width // 2
    out = np.empty_like(rows)
    for i, row in enumerate(rows):
        ext = np.concatenate([row[-pad:], row, row[:pad]]) if pad else row
        ok = ~np.isnan(ext)
        kernel = np.ones(width)
        num = np.convolve(np.where(ok, ext, 0.0), kernel, mode="valid")
        den = np.convolve(ok.astype(float), kernel, mode="valid")
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(den > 0, num / den, np.nan)[: len(row)]
    return out.reshape(-1)


def _nan_list(a: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), 6) for v in a]
