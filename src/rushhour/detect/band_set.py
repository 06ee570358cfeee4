"""Many series' Mean Predictor bands in compact shared arrays: the live pipeline's model set.

A trained band is a table of mean and deviation per (day class, minute of day). Held as one
:class:`~rushhour.detect.mean_band.MeanBandDetector` per series, each with its own predictor object,
parameter strings and a count table that only snapshots read, 10,000 series cost about 53 kB each.
Here every series keeps only its day-class *rows*: float32 ``(1440,)`` rows of mean and deviation
in two pooled arrays, a small row index per series, and an index into the distinct parameter sets
(which are shared, with their timezone and holiday calendar). A row that repeats another row of the
same series is stored once: with the ``holiday`` key, a model trained without holidays has no holiday
data, and its holiday row is the weekend row it falls back to.

Lookups are vectorised over series (:meth:`BandSet.lookup`) and give exactly what each series'
:meth:`MeanPredictor.lookup <rushhour.forecast.mean_predictor.MeanPredictor.lookup>` gives;
``band_set[key]`` rebuilds that series' detector (without its count table: it scores, it is not
snapshotted).

>>> from datetime import datetime, UTC
>>> import pandas as pd
>>> from rushhour.forecast.mean_predictor import DAY_CLASSES, MeanPredictor
>>> from rushhour.series.generate import generate_traffic
>>> hist = generate_traffic(datetime(2026, 1, 5, tzinfo=UTC), weeks=2, seed=2).series
>>> band = MeanBandDetector(MeanPredictor(key="holiday").fit(hist, exclude_holidays=True))
>>> bands = BandSet()
>>> bands["api"] = band
>>> index = pd.date_range("2026-01-19 08:00", periods=3, freq="1min", tz="UTC")
>>> codes = band.predictor.codes(index)
>>> got = bands.lookup(bands.rows(["api"] * 3), codes)
>>> all((a == b).all() for a, b in zip(got, band.predictor.lookup(codes)))
True
>>> bands.day_rows()   # weekday, weekend; the holiday row is the weekend's
2
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from rushhour.detect.mean_band import MeanBandDetector
from rushhour.forecast.mean_predictor import DAY_CLASSES, MeanPredictor
from rushhour.timeutil import from_epoch, to_epoch

_MINUTES = 1440
_MAX_CLASSES = 7  # day_of_week
_NO_TIME = np.iinfo(np.int64).min


class BandSet(Mapping[str, MeanBandDetector]):
    """Bands of many series, by series key (``bands[key] = detector`` adds or replaces one)."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        # per series: its day-class rows in the pool, its parameter set, its training time
        self._rows = np.zeros((0, _MAX_CLASSES), dtype=np.int32)
        self._kind = np.zeros(0, dtype=np.int32)
        self._trained = np.zeros(0, dtype=np.int64)
        # the pool of float32 day rows
        self._mean = np.zeros((0, _MINUTES), dtype=np.float32)
        self._dev = np.zeros((0, _MINUTES), dtype=np.float32)
        self._pooled = 0
        # the distinct parameter sets: (predictor parameters, detector rule), shared by series
        self._kinds: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self._kind_of: dict[str, int] = {}
        self._min_dev = np.zeros(0)

    # -- Mapping ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __getitem__(self, key: str) -> MeanBandDetector:
        """The series' detector, rebuilt from the shared arrays (a new object on every call)."""
        s = self._index[key]
        params, rule = self._kinds[int(self._kind[s])]
        predictor = MeanPredictor(**params)
        n = DAY_CLASSES[predictor.key]
        rows = self._rows[s, :n]
        predictor.mean_ = self._mean[rows].reshape(-1)
        predictor.dev_ = self._dev[rows].reshape(-1)
        ts = int(self._trained[s])
        predictor.trained_at_ = None if ts == _NO_TIME else from_epoch(ts)
        return MeanBandDetector(predictor, **rule)

    def __setitem__(self, key: str, band: MeanBandDetector) -> None:
        """Add the series' band (or replace it: its old rows then stay unused in the pool)."""
        predictor = band.predictor
        mean, dev = predictor.tables()
        rows = np.zeros(_MAX_CLASSES, dtype=np.int32)
        for c in range(len(mean)):
            same = [r for r in range(c) if _same(mean[r], mean[c]) and _same(dev[r], dev[c])]
            rows[c] = rows[same[0]] if same else self._pool(mean[c], dev[c])
        s = self._index.get(key)
        if s is None:
            s = self._index[key] = len(self._index)
            self._grow_series(s + 1)
        self._rows[s] = rows
        self._kind[s] = self._kind_index(predictor, band)
        at = predictor.trained_at_
        self._trained[s] = _NO_TIME if at is None else to_epoch(at)

    # -- lookups ---------------------------------------------------------------------------------
    def rows(self, keys: list[str]) -> np.ndarray:
        """Series indices of ``keys`` for :meth:`lookup`; -1 where a key has no band."""
        get = self._index.get
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    def kinds(self, series: np.ndarray) -> np.ndarray:
        """The parameter set of each series (:meth:`predictor_of` gives its codes)."""
        return self._kind[series]

    def predictor_of(self, kind: int) -> MeanPredictor:
        """An unfitted predictor with parameter set ``kind``: its ``codes`` serve that kind."""
        return MeanPredictor(**self._kinds[kind][0])

    def rule_of(self, kind: int) -> MeanBandDetector:
        """A detector with the decision rule (k, critical k, ...) of parameter set ``kind``."""
        return MeanBandDetector(self.predictor_of(kind), **self._kinds[kind][1])

    def lookup(self, series: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and deviation of each ``series`` (from :meth:`rows`) at its timestamp key
        (:meth:`MeanPredictor.codes`): what that series' own ``MeanPredictor.lookup`` gives."""
        cls, minute = np.divmod(np.asarray(codes, dtype=np.int64), _MINUTES)
        rows = self._rows[series, cls]
        mean = self._mean[rows, minute].astype(float)
        dev = self._dev[rows, minute].astype(float)
        floor = self._min_dev[self._kind[series]]
        dev = np.where(np.isnan(dev), np.nan, np.maximum(dev, floor))
        return mean, dev

    def day_rows(self) -> int:
        """Day rows held in the pool (each 1440 means and 1440 deviations in float32)."""
        return self._pooled

    def nbytes(self) -> int:
        """Bytes of the arrays held (the pool and the per-series indices, trimmed)."""
        n = len(self._index)
        per_series = self._rows[:n].nbytes + self._kind[:n].nbytes + self._trained[:n].nbytes
        return per_series + self._mean[: self._pooled].nbytes + self._dev[: self._pooled].nbytes

    def trim(self) -> BandSet:
        """Release the arrays' spare capacity (after loading many bands)."""
        n, p = len(self._index), self._pooled
        self._rows, self._kind, self._trained = (
            self._rows[:n].copy(),
            self._kind[:n].copy(),
            self._trained[:n].copy(),
        )
        self._mean, self._dev = self._mean[:p].copy(), self._dev[:p].copy()
        return self

    # -- internals -------------------------------------------------------------------------------
    def _pool(self, mean: np.ndarray, dev: np.ndarray) -> int:
        r = self._pooled
        if r == len(self._mean):
            cap = _grown(r)
            self._mean = _resized(self._mean, cap)
            self._dev = _resized(self._dev, cap)
        self._mean[r], self._dev[r] = mean, dev
        self._pooled = r + 1
        return r

    def _grow_series(self, n: int) -> None:
        if n > len(self._rows):
            cap = _grown(len(self._rows))
            self._rows = _resized(self._rows, cap)
            self._kind = _resized(self._kind, cap)
            self._trained = _resized(self._trained, cap)

    def _kind_index(self, predictor: MeanPredictor, band: MeanBandDetector) -> int:
        params = predictor.params()
        rule = {
            "k": band.k,
            "critical_k": band.critical_k,
            "min_relative_deviation": band.min_relative_deviation,
            "name": band.name,
        }
        tag = repr((sorted(params.items()), sorted(rule.items())))
        kind = self._kind_of.get(tag)
        if kind is None:
            kind = self._kind_of[tag] = len(self._kinds)
            self._kinds.append((params, rule))
            self._min_dev = np.append(self._min_dev, float(predictor.min_deviation))
        return kind


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.tobytes() == b.tobytes()  # NaN equals NaN, bit for bit


def _grown(n: int) -> int:
    return max(16, n + n // 4)


def _resized(a: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, *a.shape[1:]), dtype=a.dtype)
    out[: len(a)] = a
    return out
