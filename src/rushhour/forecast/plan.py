"""Capacity plan: an upper forecast quantile turned into an hourly instance schedule.

The shape follows EC2 predictive scaling's ``GetPredictiveScalingForecast``: a ``LoadForecast`` (the
load per hour, here requests per second at the chosen quantile, the peak step of each hour) and a
``CapacityForecast`` (instances per hour: load / (per-instance rps x target utilisation), rounded up,
at least ``min_capacity``). The saving is measured against static provisioning for the peak of the
horizon: ``1 - sum(capacity) / (peak capacity x hours)``.

>>> import numpy as np, pandas as pd
>>> from rushhour.forecast.base import Forecast
>>> idx = pd.date_range("2026-01-05", periods=4, freq="30min", tz="UTC")
>>> fc = Forecast(idx, np.full(4, 1.0), np.zeros(4), {0.9: np.array([1800.0, 3600, 7200, 1800]) * 60})
>>> p = capacity_plan(fc, PlanConfig(per_instance_rps=100, target_utilization=0.5))
>>> p.capacity, p.load_rps          # hour 1 peaks at 120 rps, hour 2 at 240 rps
([3, 5], [120.0, 240.0])
>>> round(p.saving, 3)              # static peak: 5 instances for 2 hours
0.2
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rushhour.errors import UsageError
from rushhour.forecast.base import Forecast, quantile_column


@dataclass(frozen=True)
class PlanConfig:
    """``per_instance_rps``: what one instance serves at 100%; ``target_utilization`` in (0, 1];
    ``quantile``: the forecast quantile provisioned for; ``values_are``: ``count`` (requests per step
    of the series) or ``rps``."""

    per_instance_rps: float
    target_utilization: float = 0.7
    quantile: float = 0.9
    min_capacity: int = 1
    values_are: str = "count"

    def validate(self) -> None:
        if not self.per_instance_rps > 0:
            raise UsageError(f"per_instance_rps must be > 0, got {self.per_instance_rps}")
        if not 0 < self.target_utilization <= 1:
            raise UsageError(f"target_utilization must be in (0, 1], got {self.target_utilization}")
        if not 0 < self.quantile < 1:
            raise UsageError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.min_capacity < 0:
            raise UsageError(f"min_capacity must be >= 0, got {self.min_capacity}")
        if self.values_are not in ("count", "rps"):
            raise UsageError(f"values_are must be 'count' or 'rps', got {self.values_are!r}")


@dataclass
class CapacityPlan:
    timestamps: list[pd.Timestamp]
    load_rps: list[float]
    capacity: list[int]
    config: PlanConfig

    @property
    def static_capacity(self) -> int:
        return max(self.capacity, default=0)

    @property
    def saving(self) -> float:
        static = self.static_capacity * len(self.capacity)
        return 1 - sum(self.capacity) / static if static else 0.0

    def to_json(self) -> dict[str, Any]:
        stamps = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in self.timestamps]
        metric = f"q{self.config.quantile:g} requests per second"
        return {
            "LoadForecast": [
                {
                    "Timestamps": stamps,
                    "Values": [round(v, 3) for v in self.load_rps],
                    "MetricSpecification": {
                        "TargetValue": self.config.target_utilization,
                        "PerInstanceRps": self.config.per_instance_rps,
                        "Load": metric,
                    },
                }
            ],
            "CapacityForecast": {"Timestamps": stamps, "Values": self.capacity},
            "Summary": {
                "hours": len(self.capacity),
                "instance_hours": sum(self.capacity),
                "static_peak_capacity": self.static_capacity,
                "static_instance_hours": self.static_capacity * len(self.capacity),
                "saving": round(self.saving, 4),
            },
        }

    def write_csv(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "load_rps", "capacity"])
            for t, load, cap in zip(self.timestamps, self.load_rps, self.capacity, strict=True):
                w.writerow([t.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{load:.3f}", cap])
        return path


def capacity_plan(forecast: Forecast, config: PlanConfig) -> CapacityPlan:
    """Hourly load (peak step of each hour, at the quantile) and the instances it needs."""
    config.validate()
    upper = _upper(forecast, config.quantile)
    if len(forecast.index) > 1:
        step_s = float((forecast.index[1] - forecast.index[0]).total_seconds())
    else:
        step_s = 60.0
    rps = upper / step_s if config.values_are == "count" else upper
    hourly = pd.Series(rps, index=forecast.index).groupby(forecast.index.floor("1h")).max()
    per_instance = config.per_instance_rps * config.target_utilization
    capacity = [
        max(config.min_capacity, math.ceil(round(v / per_instance, 9)))
        if np.isfinite(v)
        else config.min_capacity
        for v in hourly.to_numpy()
    ]
    return CapacityPlan(
        timestamps=list(hourly.index),
        load_rps=[float(v) for v in hourly.to_numpy()],
        capacity=capacity,
        config=config,
    )


def _upper(forecast: Forecast, q: float) -> np.ndarray:
    for level, values in forecast.quantiles.items():
        if abs(level - q) < 1e-9:
            return np.asarray(values, dtype=float)
    from scipy.special import ndtri

    have = ", ".join(quantile_column(k) for k in sorted(forecast.quantiles))
    if forecast.std is None:
        raise UsageError(f"the forecast has no quantile {q:g} (it has {have})")
    return np.asarray(forecast.mean + float(ndtri(q)) * forecast.std, dtype=float)
