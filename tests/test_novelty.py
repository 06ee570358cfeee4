"""Temporal novelty: recurring surprises are bounded by how often they recur, new ones are not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from rushhour.detect.default import DefaultDetector, DetectorConfig
from rushhour.detect.novelty import Novelty
from rushhour.errors import UsageError
from tests.stage_helpers import assert_snapshot_round_trip


def test_a_surprise_of_a_new_size_passes_unchanged() -> None:
    u = np.zeros(5000)
    u[4000] = 25.0
    np.testing.assert_array_equal(Novelty().cap(u), u)


def test_a_recurring_surprise_is_bounded_by_its_frequency() -> None:
    u = np.zeros(6000)
    u[50::300] = 15.0
    out = Novelty().cap(u)
    assert out[50] == 15.0  # the first is new
    # later recurrences: about one in 300 buckets, so -log10(1/300) + 3 ≈ 5.5 at most
    assert out[-250] < 6.0
    assert out[-250] == pytest.approx(-np.log10(1 / 300) + 3, abs=0.3)


def test_a_surprise_much_larger_than_the_recurring_ones_is_not_bounded() -> None:
    u = np.zeros(6000)
    u[50::300] = 10.0
    u[5990] = 30.0  # 0.8 * 30 - 2 = 22 > 10: nothing comparable was seen
    assert Novelty().cap(u)[5990] == 30.0


def test_an_incident_of_many_buckets_counts_once_with_episodes() -> None:
    # one long incident (60 buckets of the same surprise), then a recurrence
    u = np.zeros(1500)
    u[100:160] = 12.0
    u[1400] = 12.0
    memory = 5000.0
    by_event = Novelty(memory=memory).cap(u)[1400]
    by_bucket = Novelty(memory=memory, episodes=False).cap(u)[1400]
    assert by_event > by_bucket + 1.0  # about log10(60) apart
    keep = 1.0 - 1.0 / memory
    one_event = keep**1299  # the upcrossing at bucket 100, decayed until bucket 1400 is read
    mass = (1.0 - keep**1400) * memory  # buckets seen, decayed alike
    # counts are stored as float32: the bound agrees to their rounding
    assert by_event == pytest.approx(-np.log10(one_event / (mass + 1.0)) + 3.0, abs=1e-6)


def _eager(u: np.ndarray, nv: Novelty) -> np.ndarray:
    """The histogram in float64 with every bin decayed every bucket (the stage before lazy decay)."""
    keep, nbins = 1.0 - 1.0 / nv.memory, nv.bins
    mass, prev, counts = 0.0, 0.0, np.zeros(nbins)
    out = u.copy()
    for i, ui in enumerate(u):
        top = min(int(np.log1p(ui) / nv.width), nbins - 1)
        if ui > 0:
            lo = min(int(np.ceil(np.log1p(max(ui * nv.rel - nv.delta, 0.0)) / nv.width)), nbins - 1)
            if counts[lo] > 0:
                out[i] = min(ui, -np.log10(counts[lo] / (mass + 1.0)) + nv.allowance)
        counts *= keep
        mass = mass * keep + 1.0
        first = min(int(np.log1p(prev) / nv.width), nbins - 1) + 1 if prev > 0 else 0
        counts[first : top + 1] += 1.0
        prev = ui
    return out


def test_lazy_decay_agrees_with_decaying_every_bin_across_rescalings() -> None:
    # memory 20: the stored counts are rescaled every ~920 buckets, eight times here
    rng = np.random.default_rng(5)
    u = np.where(rng.random(8000) < 0.05, np.abs(rng.standard_cauchy(8000)) * 10, 0.0)
    nv = Novelty(memory=20.0)
    lazy, eager = nv.cap(u), _eager(u, Novelty(memory=20.0))
    # a count decayed below float32's range (1e-38: a comparable surprise ~88 memories ago) is
    # gone, where float64 kept it to 1e-308: the bound it gave is beyond 38 decades either way
    same = np.isclose(lazy, eager, rtol=0, atol=1e-5)
    assert same.mean() > 0.99
    assert np.all(np.minimum(lazy, eager)[~same] > 38)
    # it did rescale: without, the growth would be 0.95**-8000 = 1e178, beyond float32
    assert nv.state_ is not None and nv.state_[0] <= 1e20


def test_a_histogram_of_the_float64_layout_restores() -> None:
    u = np.abs(np.random.default_rng(2).standard_cauchy(3000)) * 5
    nv = Novelty()
    nv.cap(u[:2000])
    # the earlier layout: decayed mass, previous surprise, decayed counts (as _eager keeps them)
    assert nv.state_ is not None
    growth = float(nv.state_[0]) + float(nv.state_[1])
    old = np.concatenate([[nv.state_[2] / growth, u[1999]], nv.state_[4:] / growth])
    again = Novelty()
    again.state_ = again.restore_state(old.tolist())
    np.testing.assert_allclose(again.cap(u[2000:]), nv.cap(u[2000:]), rtol=0, atol=1e-5)
    with pytest.raises(UsageError):
        Novelty().restore_state([0.0] * 7)


def test_memory_forgets_old_recurrences() -> None:
    u = np.zeros(30000)
    u[100:1000:100] = 15.0
    u[29000] = 15.0  # 28,000 buckets later: the earlier ones have decayed away (memory 2,000)
    out = Novelty().cap(u)
    assert out[900] < 6.0
    assert out[29000] > out[900] + 4.0


def test_chunks_join_up_exactly() -> None:
    u = np.abs(np.random.default_rng(1).standard_cauchy(4000))
    whole = Novelty().cap(u)
    nv = Novelty()
    parts = np.concatenate([nv.cap(u[a : a + 777]) for a in range(0, 4000, 777)])
    np.testing.assert_array_equal(parts, whole)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(UsageError):
        Novelty(rel=0.0)
    with pytest.raises(UsageError):
        Novelty(memory=0.5)


def _daily_spikes(n_days: int = 14) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """A CPU-like series, idle near 0.1, with a backup job spiking it to ~1.5 once a day at a time
    that drifts by a few buckets (so the daily profile cannot learn it exactly)."""
    rng = np.random.default_rng(7)
    n = 288 * n_days
    x = 0.1 + 0.03 * rng.integers(0, 3, size=n)
    for day in range(n_days):
        x[day * 288 + 100 + int(rng.integers(-6, 7))] = 1.5
    idx = pd.date_range(datetime(2026, 1, 5, tzinfo=UTC), periods=n, freq="5min")
    return idx, x


def test_the_detector_scores_a_daily_recurring_spike_down_but_not_a_new_one() -> None:
    idx, x = _daily_spikes()
    # novelty alone (the daily recurrence stage, tests/test_recurrence.py, would hold it lower)
    with_novelty = DefaultDetector(DetectorConfig(recurrence=False)).run(idx, x)
    without = DefaultDetector(DetectorConfig(novelty=False, recurrence=False)).run(idx, x)
    late = slice(288 * 7, None)  # the second week, once the spikes are familiar
    # once a day at 5-minute buckets: about 1/288, so Q >= 1e-3/288 and a score near 0.53
    assert float(without.score[late].max()) > 0.7
    assert float(with_novelty.score[late].max()) < 0.56
    # ... but a spike of a new size still pages with a high score
    x2 = x.copy()
    x2[288 * 12 + 200] = 40.0
    res = DefaultDetector(DetectorConfig()).run(idx, x2)
    assert bool(res.alert[288 * 12 + 200]) and float(res.score[288 * 12 + 200]) > 0.8


def test_novelty_does_not_touch_a_series_without_recurring_surprises() -> None:
    idx = pd.date_range(datetime(2026, 1, 5, tzinfo=UTC), periods=3000, freq="5min")
    x = 100 + np.random.default_rng(3).normal(size=3000)
    x[2500] += 30
    a = DefaultDetector(DetectorConfig()).run(idx, x)
    b = DefaultDetector(DetectorConfig(novelty=False)).run(idx, x)
    assert bool(a.alert[2500]) and bool(b.alert[2500])
    assert a.score[2500] == pytest.approx(b.score[2500])


def test_snapshots_carry_the_novelty_state_and_old_ones_restore() -> None:
    idx, x = _daily_spikes(6)
    snap, _ = assert_snapshot_round_trip(idx, x, 1000)
    old = {k: v for k, v in snap.items() if k != "novelty"}
    DefaultDetector.restore(old).run(idx[1000:1010], x[1000:1010])
