"""Forecast accuracy: RMSE, MAE, MASE (against the weekly seasonal naive), sMAPE, interval coverage.

MASE scales the forecast's MAE by the in-sample MAE of the seasonal naive forecast over the training
history: ``mean |y_t - y_{t-m}|`` with ``m`` the steps in a week (336 for 30-minute data). Below 1,
the forecast beats "same time last week" as measured on the history.

>>> import numpy as np
>>> y, f = np.array([10.0, 12.0, 14.0]), np.array([11.0, 12.0, 12.0])
>>> mae(y, f), round(rmse(y, f), 3), round(smape(y, f), 2)
(1.0, 1.291, 8.3)
>>> mase_scale(np.array([1.0, 2.0, 3.0, 5.0]), season=2)
2.5
>>> coverage(y, y - 1, y + 1), float(width(y - 1, y + 1))
(1.0, 2.0)
"""

from __future__ import annotations

import numpy as np

from rushhour.forecast.base import Forecast


def _ok(*arrays: np.ndarray) -> np.ndarray:
    mask = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        mask &= np.isfinite(a)
    return mask


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    ok = _ok(actual, forecast)
    return float(np.mean(np.abs(actual[ok] - forecast[ok]))) if ok.any() else float("nan")


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    ok = _ok(actual, forecast)
    return float(np.sqrt(np.mean((actual[ok] - forecast[ok]) ** 2))) if ok.any() else float("nan")


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); steps where both are 0 count as exact."""
    ok = _ok(actual, forecast)
    a, f = actual[ok], forecast[ok]
    den = np.abs(a) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(den > 0, 2 * np.abs(a - f) / den, 0.0)
    return float(100 * np.mean(terms)) if ok.any() else float("nan")


def mase_scale(history: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (``y_t - y_{t-season}``) over ``history``."""
    if len(history) <= season:
        return float("nan")
    diff = np.abs(history[season:] - history[:-season])
    diff = diff[np.isfinite(diff)]
    return float(np.mean(diff)) if len(diff) else float("nan")


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    ok = _ok(actual, lower, upper)
    inside = (actual[ok] >= lower[ok]) & (actual[ok] <= upper[ok])
    return float(np.mean(inside)) if ok.any() else float("nan")


def width(lower: np.ndarray, upper: np.ndarray) -> float:
    ok = _ok(lower, upper)
    return float(np.mean(upper[ok] - lower[ok])) if ok.any() else float("nan")


def interval(fc: Forecast, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` interval: from the forecast's quantiles when it has them, else Gaussian."""
    lo_q, hi_q = round((1 - level) / 2, 6), round(1 - (1 - level) / 2, 6)
    qs = {round(q, 6): v for q, v in fc.quantiles.items()}
    if lo_q in qs and hi_q in qs:
        return qs[lo_q], qs[hi_q]
    from scipy.special import ndtri  # imported here: scipy is off the live pipeline's start

    z = float(ndtri(hi_q))
    return np.maximum(fc.mean - z * fc.std, 0.0), fc.mean + z * fc.std
