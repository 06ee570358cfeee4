"""Capacity plan: hourly peaks of the upper quantile to instances, saving against static peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushhour.errors import UsageError
from rushhour.forecast.base import Forecast
from rushhour.forecast.plan import PlanConfig, capacity_plan


def _fc(upper: list[float], freq: str = "30min") -> Forecast:
    idx = pd.date_range("2026-01-05", periods=len(upper), freq=freq, tz="UTC")
    u = np.asarray(upper, dtype=float)
    return Forecast(idx, u * 0.8, u * 0.1, {0.5: u * 0.8, 0.9: u})


def test_capacity_follows_the_upper_quantile(tmp_path: Path) -> None:
    # counts per 30 minutes: 180,000 per half hour = 100 rps
    fc = _fc([180_000, 90_000, 360_000, 0, 18_000, 18_000])
    plan = capacity_plan(fc, PlanConfig(per_instance_rps=10, target_utilization=0.5))
    assert plan.load_rps == [100.0, 200.0, 10.0]
    assert plan.capacity == [20, 40, 2]
    assert plan.static_capacity == 40 and plan.saving == pytest.approx(1 - 62 / 120)
    data = plan.to_json()
    assert data["CapacityForecast"]["Values"] == [20, 40, 2]
    assert data["CapacityForecast"]["Timestamps"][1] == "2026-01-05T01:00:00Z"
    assert data["LoadForecast"][0]["Values"] == [100.0, 200.0, 10.0]
    assert data["Summary"]["static_instance_hours"] == 120
    text = plan.write_csv(tmp_path / "p.csv").read_text().splitlines()
    assert text[0] == "timestamp,load_rps,capacity" and text[2] == "2026-01-05T01:00:00Z,200.000,40"


def test_rps_series_and_min_capacity() -> None:
    plan = capacity_plan(
        _fc([0.0, 0.0, 7.0, 7.0]),
        PlanConfig(per_instance_rps=1, target_utilization=1.0, values_are="rps", min_capacity=2),
    )
    assert plan.capacity == [2, 7]


def test_other_quantiles_come_from_the_normal() -> None:
    plan = capacity_plan(_fc([1800.0, 1800.0]), PlanConfig(per_instance_rps=1, quantile=0.975))
    assert plan.load_rps[0] > 0.8  # mean 0.8 rps plus 1.96 std


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"per_instance_rps": 0}, "per_instance_rps must be > 0, got 0"),
        (
            {"per_instance_rps": 1, "target_utilization": 1.5},
            r"target_utilization must be in \(0, 1\], got 1.5",
        ),
        ({"per_instance_rps": 1, "quantile": 1.0}, r"quantile must be in \(0, 1\), got 1.0"),
        (
            {"per_instance_rps": 1, "values_are": "bytes"},
            "values_are must be 'count' or 'rps', got 'bytes'",
        ),
    ],
)
def test_validation(kw: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        capacity_plan(_fc([1.0, 1.0]), PlanConfig(**kw))  # type: ignore[arg-type]
