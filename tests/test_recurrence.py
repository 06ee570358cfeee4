"""Daily recurrence: a surprise recent days showed at the same time of day is bounded, news is not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from rushhour.detect.default import DefaultDetector, DetectorConfig
from rushhour.detect.recurrence import Recurrence
from rushhour.errors import UsageError
from tests.stage_helpers import assert_snapshot_round_trip

DAY = 288  # 5-minute buckets
SECS = np.arange(0, 20 * 86400, 300.0)


def _daily(size: float, at: int = 100, days: int = 20, jitter: int = 5) -> np.ndarray:
    """A surprise of ``size`` once a day around bucket ``at`` of the day (± ``jitter`` buckets)."""
    rng = np.random.default_rng(0)
    u = np.zeros(SECS.size)
    for d in range(days):
        u[d * DAY + at + int(rng.integers(-jitter, jitter + 1))] = size
    return u


def test_a_daily_surprise_is_bounded_from_its_third_day() -> None:
    u = _daily(15.0, at=98, jitter=2)  # 08:00-08:20, inside one 30-minute phase
    out = Recurrence().cap(SECS, u)
    hits = np.flatnonzero(u)
    assert out[hits[0]] == 15.0 and out[hits[1]] == 15.0  # new, then seen on one day only
    np.testing.assert_array_equal(out[hits[2:]], 3.0)  # Q = 1e-3: a score of 0.375


def test_the_same_surprise_at_another_time_of_day_keeps_its_score() -> None:
    u = _daily(15.0)
    u[12 * DAY + 200] = 15.0  # 16:40, six hours from the daily one
    assert Recurrence().cap(SECS, u)[12 * DAY + 200] == 15.0


def test_yesterdays_incident_at_the_same_hour_does_not_discount_todays() -> None:
    u = np.zeros(SECS.size)
    u[5 * DAY + 100] = 15.0
    u[6 * DAY + 101] = 15.0
    assert Recurrence().cap(SECS, u)[6 * DAY + 101] == 15.0


def test_a_surprise_much_larger_than_the_recurring_one_is_news() -> None:
    u = _daily(10.0)
    u[15 * DAY + 100] = 30.0  # 0.8 * 30 - 2 = 22 > 10
    out = Recurrence().cap(SECS, u)
    assert out[15 * DAY + 100] == 30.0


def test_only_recurrences_well_beyond_the_alert_level_count() -> None:
    # a phase that pages marginally every day (u = 6: a daily ramp timed a few minutes off) does
    # not discount a surprise of 8 there, although 6 >= 0.8 * 8 - 2: recurrences count from 7 on
    u = _daily(6.0)
    u[15 * DAY + 100] = 8.0
    assert Recurrence().cap(SECS, u)[15 * DAY + 100] == 8.0
    assert Recurrence(floor=0.0).cap(SECS, u)[15 * DAY + 100] == 3.0


def test_a_recurrence_that_stopped_is_forgotten_after_the_window() -> None:
    u = _daily(12.0, days=4)
    u[9 * DAY + 100] = 12.0  # days 2 and 3 are 7 and 6 days back: in the 8-day window
    u[19 * DAY + 100] = 12.0  # 10 days after day 9: the window holds no earlier day
    out = Recurrence().cap(SECS, u)
    assert out[9 * DAY + 100] == 3.0
    assert out[19 * DAY + 100] == 12.0


def test_a_jitter_across_a_phase_boundary_still_matches() -> None:
    u = np.zeros(SECS.size)
    for d, at in enumerate([101, 103, 100, 104, 102]):  # 08:25-08:40, either side of 08:30
        u[d * DAY + at] = 15.0
    out = Recurrence().cap(SECS, u)
    assert [float(out[d * DAY + at]) for d, at in enumerate([101, 103, 100, 104, 102])] == [
        15.0,
        15.0,
        3.0,
        3.0,
        3.0,
    ]


def test_chunks_join_up_exactly() -> None:
    u = np.abs(np.random.default_rng(1).standard_cauchy(SECS.size)) * 3
    whole = Recurrence().cap(SECS, u)
    rec = Recurrence()
    step = 777
    parts = [rec.cap(SECS[a : a + step], u[a : a + step]) for a in range(0, SECS.size, step)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert (whole < u).any()  # the heavy tail recurs somewhere: the test is not vacuous


def test_bad_settings_are_refused() -> None:
    with pytest.raises(UsageError):
        Recurrence(slot=7 * 60.0)  # does not divide the day
    with pytest.raises(UsageError):
        Recurrence(rel=0.0)
    with pytest.raises(UsageError):
        Recurrence(times=8, days=8)


def _cpu_with_backup(n_days: int = 14) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Idle CPU near 0.1 with a backup spiking it to ~1.5 every day at 08:20, ± 6 buckets."""
    rng = np.random.default_rng(7)
    x = 0.1 + 0.03 * rng.integers(0, 3, size=DAY * n_days)
    for day in range(n_days):
        x[day * DAY + 100 + int(rng.integers(-6, 7))] = 1.5
    idx = pd.date_range(datetime(2026, 1, 5, tzinfo=UTC), periods=x.size, freq="5min")
    return idx, x


def test_the_detector_stops_paging_a_daily_job_but_pages_a_new_spike() -> None:
    idx, x = _cpu_with_backup()
    late = slice(DAY * 3, None)
    on = DefaultDetector(DetectorConfig()).run(idx, x)
    off = DefaultDetector(DetectorConfig(recurrence=False)).run(idx, x)
    # with novelty alone a daily job is held near 0.53 and pages every day; read by time of day
    # it pages on few days (its jitter of ±30 minutes spans three phases, each of which must
    # have seen it on two days, and a recurrence much larger than the remembered ones is news)
    assert int(off.alert[late].sum()) >= 10
    assert int(on.alert[late].sum()) <= int(off.alert[late].sum()) // 4
    x2 = x.copy()
    x2[DAY * 12 + 200] = 1.5  # the job's size, at 16:40
    res = DefaultDetector(DetectorConfig()).run(idx, x2)
    assert bool(res.alert[DAY * 12 + 200])


def test_a_series_without_daily_recurrences_scores_the_same_with_or_without_the_stage() -> None:
    idx = pd.date_range(datetime(2026, 1, 5, tzinfo=UTC), periods=3000, freq="5min")
    x = 100 + np.random.default_rng(3).normal(size=3000)
    x[2500] += 30
    a = DefaultDetector(DetectorConfig()).run(idx, x)
    b = DefaultDetector(DetectorConfig(recurrence=False)).run(idx, x)
    np.testing.assert_array_equal(a.score, b.score)
    assert bool(a.alert[2500])


def test_snapshots_carry_the_phases_and_old_ones_restore() -> None:
    idx, x = _cpu_with_backup(6)
    snap, _ = assert_snapshot_round_trip(idx, x, 1000)
    old = {k: v for k, v in snap.items() if k != "daily_recurrence"}
    old["config"] = {k: v for k, v in snap["config"].items() if k != "recurrence"}
    DefaultDetector.restore(old).run(idx[1000:1010], x[1000:1010])
    # a snapshot from when each component kept its own phases: merged, they are the phases of
    # the largest surprise (here the other components' phases are empty, on an older day)
    per_component = {k: v for k, v in snap.items() if k != "daily_recurrence"}
    empty = Recurrence().initial_state().tolist()
    per_component["recurrence"] = [snap["daily_recurrence"], empty, empty]
    want = DefaultDetector.restore(snap).run(idx[1000:], x[1000:])
    got = DefaultDetector.restore(per_component).run(idx[1000:], x[1000:])
    np.testing.assert_array_equal(got.score, want.score)


def test_merged_phases_drop_the_days_a_state_skipped() -> None:
    rec = Recurrence()
    a, b = rec.initial_state(), rec.initial_state()
    n = rec.slots
    a[0], b[0] = 10.0, 12.0
    a[1 + (10 % rec.days) * n + 5] = 9.0  # day 10 (still in the window of day 12)
    a[1 + (11 % rec.days) * n + 5] = 8.0  # stale: a slot of day 3, which a never reached 11
    b[1 + (12 % rec.days) * n + 6] = 7.0
    m = rec.merge_states([a.tolist(), b.tolist()])
    assert m[0] == 12.0
    assert m[1 + (10 % rec.days) * n + 5] == 9.0
    assert m[1 + (11 % rec.days) * n + 5] == 0.0
    assert m[1 + (12 % rec.days) * n + 6] == 7.0
    assert rec.merge_states([]).tolist() == rec.initial_state().tolist()


def test_a_daily_burst_is_one_recurrence_whichever_component_finds_it() -> None:
    # a daily job at 08:20 (± 30 minutes) that spikes on odd days and holds a plateau for an hour
    # on even days: the residual finds the spikes most surprising, the shift the plateaus. Each
    # component alone saw its kind on one earlier day only; the detector's largest surprise saw
    # the job every day, so from the third day it stops paging (day 4 paged, by the shift, while
    # each component read its own recurrences)
    rng = np.random.default_rng(7)
    x = 0.1 + 0.03 * rng.integers(0, 3, size=DAY * 14)
    for day in range(14):
        at = day * DAY + 100 + int(rng.integers(-6, 7))
        if day % 2:
            x[at] = 1.5
        else:
            x[at : at + 12] = 0.45
    idx = pd.date_range(datetime(2026, 1, 5, tzinfo=UTC), periods=x.size, freq="5min")
    res = DefaultDetector(DetectorConfig()).run(idx, x)
    paged_days = set((np.flatnonzero(res.alert) // DAY).tolist())
    assert 4 not in paged_days
    assert len([d for d in paged_days if d >= 3]) <= 2
    off = DefaultDetector(DetectorConfig(recurrence=False)).run(idx, x)
    assert int(off.alert[DAY * 3 :].sum()) >= 10


def test_a_state_of_the_float64_layout_restores() -> None:
    u = _daily(15.0, at=98, jitter=2)
    rec = Recurrence()
    rec.cap(SECS[: 10 * DAY], u[: 10 * DAY])
    assert rec.state_ is not None
    again = Recurrence()
    again.state_ = again.restore_state(rec.state_.astype(float).tolist())
    np.testing.assert_array_equal(
        again.cap(SECS[10 * DAY :], u[10 * DAY :]), rec.cap(SECS[10 * DAY :], u[10 * DAY :])
    )
    with pytest.raises(UsageError):
        Recurrence().restore_state([0.0] * 5)
