"""The calibrated score path: open only for count series whose residuals look Gaussian."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rushhour.detect.calibrated import Calibrated
from rushhour.detect.default import DefaultDetector, DetectorConfig
from tests.stage_helpers import assert_snapshot_round_trip

N = 6000


def _z(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=N)


def test_open_for_calibrated_counts_and_scores_the_gaussian_tail() -> None:
    z = _z()
    z[5000] = 9.0
    u = Calibrated(warmup=1000).surprise(np.full(N, 42.0), z)
    assert np.all(u[:1000] == 0)  # warm-up
    assert int(np.argmax(u)) == 5000
    # -log10(2 Q(9)) = 18.6, less the penalty of 2
    assert 16.0 < u[5000] < 17.0
    assert np.mean(u[1000:] > 0) < 0.01


def test_closed_for_values_that_are_not_counts() -> None:
    z = _z()
    z[5000] = 9.0
    values = np.full(N, 42.0)
    values[10] = 41.5
    assert np.all(Calibrated(warmup=1000).surprise(values, z) == 0)


def test_closed_while_the_tails_are_heavier_than_gaussian() -> None:
    z = np.random.default_rng(1).standard_t(2, size=N)
    z[5000] = 40.0
    assert np.all(Calibrated(warmup=1000).surprise(np.full(N, 42.0), z)[3000:] == 0)


def test_the_return_after_a_sustained_deviation_is_not_scored() -> None:
    z = _z(2)
    z[3000:3030] = 8.0  # a level shift: sustained, then absorbed by the baseline
    z[3400] = -8.0  # its end: the baseline now expects the shifted level
    z[4500] = -8.0  # later than ``returns`` buckets: a new incident
    u = Calibrated(warmup=1000, returns=600).surprise(np.full(N, 42.0), z)
    assert u[3000] > 10 and u[3400] == 0 and u[4500] > 10


def test_chunked_equals_whole() -> None:
    z = _z(3)
    whole = Calibrated(warmup=500).surprise(np.full(N, 7.0), z)
    cp = Calibrated(warmup=500)
    parts = [
        cp.surprise(np.full(len(z[i : i + 777]), 7.0), z[i : i + 777]) for i in range(0, N, 777)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_series_that_are_not_counts_score_as_without_the_path() -> None:
    rng = np.random.default_rng(4)
    idx = pd.date_range("2026-01-05", periods=6000, freq="1min", tz="UTC")
    x = 50 + 10 * np.sin(np.arange(6000) * 2 * np.pi / 1440) + rng.normal(size=6000)
    x[5500] += 30
    on = DefaultDetector().run(idx, x)
    off = DefaultDetector(DetectorConfig(calibrated=False)).run(idx, x)
    np.testing.assert_array_equal(on.score, off.score)
    # the same series as counts: the path opens and scores the bump on its own
    counts = np.round(x)
    on = DefaultDetector().run(idx, counts)
    assert on.components["calibrated"][5500] > 0.5
    assert (
        "calibrated" not in DefaultDetector(DetectorConfig(calibrated=False)).run(idx, x).components
    )


def test_snapshot_from_before_the_path_restores() -> None:
    idx = pd.date_range("2026-01-05", periods=3000, freq="1min", tz="UTC")
    x = np.random.default_rng(5).poisson(100, size=3000).astype(float)
    det = DefaultDetector()
    det.run(idx[:2000], x[:2000])
    state = det.snapshot()
    del state["calibrated"]
    del state["config"]["calibrated"]
    res = DefaultDetector.restore(state).run(idx[2000:], x[2000:])
    assert np.all((res.score >= 0) & (res.score < 1))


def test_snapshot_before_any_sustained_run_is_strict_json_and_restores() -> None:

    idx = pd.date_range("2026-01-05", periods=3000, freq="1min", tz="UTC")
    x = np.random.default_rng(6).poisson(100, size=3000).astype(float)
    whole = DefaultDetector().run(idx, x)
    _, again = assert_snapshot_round_trip(idx, x, 500)
    np.testing.assert_array_equal(again.score, whole.score[500:])
