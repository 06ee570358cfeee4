"""The rhythm path: slow incidents the seasonal baseline follows are judged against the day class."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from rushhour.detect.default import DefaultDetector, DefaultFleet, DetectorConfig
from rushhour.detect.rhythm import Rhythm
from rushhour.errors import UsageError
from rushhour.series.generate import generate_traffic
from tests.stage_helpers import assert_snapshot_round_trip

# a Monday; no US public holiday in the three weeks after it
START = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 60 * 24


def _traffic_with_slow_incidents(seed: int) -> tuple[pd.DatetimeIndex, np.ndarray, int, int]:
    """Three weeks of 1-minute traffic; in week 3 a morning rush hour that never comes (Wednesday
    06:30-09:30, down to 30%) and a ramp to 2.5x over an hour (Thursday 14:00)."""
    tr = generate_traffic(START, weeks=3, seed=seed, anomalies_per_day=0)
    x = tr.frame["value"].to_numpy(dtype=float)
    rush = 16 * DAY + 6 * 60 + 30
    f = np.concatenate([np.linspace(1, 0.3, 60), np.full(60, 0.3), np.linspace(0.3, 1, 60)])
    x[rush : rush + 180] = np.round(x[rush : rush + 180] * f)
    ramp = 17 * DAY + 14 * 60
    x[ramp : ramp + 60] = np.round(x[ramp : ramp + 60] * np.linspace(1.04, 2.5, 60))
    return tr.frame.index, x, rush, ramp


def test_a_missing_rush_hour_the_baseline_follows_is_paged_by_the_rhythm() -> None:
    missed_without = 0
    for seed in range(3):
        idx, x, rush, ramp = _traffic_with_slow_incidents(seed)
        on = DefaultDetector().run(idx, x)
        off = DefaultDetector(DetectorConfig(rhythm=False)).run(idx, x)
        assert on.alert[rush : rush + 180].any(), seed
        assert on.components["rhythm"][rush : rush + 180].max() >= 0.5
        assert on.alert[ramp : ramp + 60].any(), seed
        missed_without += not off.alert[rush : rush + 180].any()
        # no page of its own elsewhere: outside the incidents it pages no more than without it
        outside = np.ones(len(x), dtype=bool)
        outside[rush : rush + 240] = outside[ramp : ramp + 120] = False
        assert on.alert[outside].sum() <= off.alert[outside].sum(), seed
    # the baseline alone follows the fading rush hour (its offset and level forecaster absorb it)
    assert missed_without >= 2


def test_series_that_are_not_counts_score_as_without_the_rhythm() -> None:
    idx, x, _, _ = _traffic_with_slow_incidents(0)
    x = x + 0.5
    on = DefaultDetector().run(idx, x)
    off = DefaultDetector(DetectorConfig(rhythm=False)).run(idx, x)
    np.testing.assert_array_equal(on.score, off.score)
    np.testing.assert_array_equal(on.alert, off.alert)
    assert not on.components["rhythm"].any()


def test_weekends_are_judged_against_weekends_only() -> None:
    # 5-minute buckets: weekdays busy (x3), weekends quiet; the first weekend has no profile of
    # its own yet, so it is not judged against the weekdays' (it would be a huge drop)
    secs = START.timestamp() + np.arange(21 * 288) * 300.0
    weekday = (np.floor(secs / 86400) + 3) % 7 < 5
    hours = np.mod(secs, 86400) / 3600
    rate = (1 + 2 * np.exp(-0.5 * ((hours - 12) / 3) ** 2)) * np.where(weekday, 600, 200)
    x = np.random.default_rng(1).poisson(rate).astype(float)
    out = Rhythm(bucket_seconds=300, warmup=288).run(secs, x, rate, np.sqrt(rate))
    first_weekend = slice(5 * 288, 7 * 288)
    assert np.all(out.surprise[first_weekend] == 0)
    assert np.isnan(out.z[5 * 288 : 6 * 288]).all()  # Saturday: no weekend visit yet
    later = slice(8 * 288, 21 * 288)
    assert out.open[later].mean() > 0.9
    assert np.all(out.surprise[later] < 5)


def test_an_incident_on_a_slots_first_visits_is_not_learned_as_the_rhythm() -> None:
    # an outage on the first two Mondays at 10:00: the slot's value is the median of its first
    # visits (with the baseline's forecast voting), and two normal visits in a row re-learn it
    secs = START.timestamp() + np.arange(21 * DAY) * 60.0
    hours = np.mod(secs, 86400) / 3600
    rate = 500 + 400 * np.exp(-0.5 * ((hours - 10) / 2) ** 2)
    x = np.random.default_rng(2).poisson(rate).astype(float)
    for day in (0, 7):
        lo = day * DAY + 600
        x[lo : lo + 20] = 0
    out = Rhythm(bucket_seconds=60, warmup=DAY).run(secs, x, rate, np.sqrt(rate))
    for day in (1, 2, 3, 4, 8, 9, 10, 14):
        lo = day * DAY + 600
        assert np.all(out.surprise[lo : lo + 20] < 5), day
    lo = 15 * DAY + 600
    x2 = x.copy()
    x2[lo : lo + 20] = 0
    out2 = Rhythm(bucket_seconds=60, warmup=DAY).run(secs, x2, rate, np.sqrt(rate))
    assert out2.surprise[lo : lo + 20].max() >= 10


def test_the_rhythm_survives_a_snapshot_and_an_old_snapshot_starts_it_afresh() -> None:
    idx, x, rush, _ = _traffic_with_slow_incidents(1)
    cut = rush - 60
    whole = DefaultDetector().run(idx, x)
    state, rest = assert_snapshot_round_trip(idx, x, cut)
    np.testing.assert_allclose(rest.score, whole.score[cut:], rtol=1e-12, atol=0)
    del state["rhythm"]
    old = DefaultDetector.restore(state).run(idx[cut:], x[cut:])
    # a fresh rhythm has no profile and a warm-up of a day: closed during the missing rush hour
    assert not old.components["rhythm"][:DAY].any()
    assert whole.components["rhythm"][rush : rush + 180].max() >= 0.5


def _sparse_spikes() -> tuple[pd.DatetimeIndex, np.ndarray, int]:
    """Two weeks of 5-minute buckets of zeros with a pair of 20s every 100 buckets (as NAB's
    art_increase_spike_density), and from day 10 a burst of denser spikes."""
    n = 14 * 288
    idx = pd.date_range("2026-03-03", periods=n, freq="5min", tz="UTC")
    x = np.zeros(n)
    x[::100] = x[6::100] = 20
    dense = 10 * 288
    x[dense : dense + 300 : 15] = 20
    return idx, x, dense


def test_a_sparse_spiky_count_series_does_not_hold_the_rhythm_path_open() -> None:
    # the baseline forecasts ~0 with a noise scale of ~1e-9 there: every spike was a deviation
    # of 1e10 σ, |M| never came back under 1, and one endless episode kept the episode-rate gate
    # open with the capped surprise, whose refractory damping halved the burst's scores
    idx, x, dense = _sparse_spikes()
    on = DefaultDetector().run(idx, x)
    off = DefaultDetector(DetectorConfig(rhythm=False)).run(idx, x)
    np.testing.assert_array_equal(on.score[dense:], off.score[dense:])
    assert not on.components["rhythm"][dense:].any()
    assert (on.components["rhythm"] > 0).mean() < 0.01


def test_each_guard_alone_closes_the_path_on_a_sparse_spiky_series() -> None:
    idx, x, dense = _sparse_spikes()
    secs = idx.asi8 / 1e9
    # the baseline's degenerate forecast and noise scale on such a series
    expected, sigma = np.zeros(len(x)), np.full(len(x), 1e-9)
    for kw, closed_from in (({"max_share": 1.1}, 7 * 288), ({"min_sigma": 0.0}, 0)):
        out = Rhythm(bucket_seconds=300, warmup=1440, **kw).run(secs, x, expected, sigma)
        assert not out.surprise[closed_from:].any(), kw
    # with neither, the path opens and stays open with its capped surprise
    out = Rhythm(bucket_seconds=300, warmup=1440, max_share=1.1, min_sigma=0.0).run(
        secs, x, expected, sigma
    )
    assert out.open[dense:].all()
    assert np.all(out.surprise[dense:] == Rhythm.cap)


def test_a_public_holiday_is_judged_as_a_weekend_day() -> None:
    # 19 January 2026 is a US public holiday (Martin Luther King Jr. Day): the generator makes it
    # a quiet weekend day; the morning rush hour that does not come paged without the calendar
    start = datetime(2026, 1, 5, tzinfo=UTC)
    holiday = slice(14 * DAY, 15 * DAY)
    paged_without = 0
    for seed in range(3):
        tr = generate_traffic(start, weeks=3, seed=seed, anomalies_per_day=0)
        x = tr.frame["value"].to_numpy(dtype=float)
        us = DefaultDetector(DetectorConfig(holidays_country="US")).run(tr.frame.index, x)
        none = DefaultDetector().run(tr.frame.index, x)
        assert us.components["rhythm"][holiday].max() < 0.5, seed
        assert not us.alert[holiday].any(), seed
        paged_without += bool(none.components["rhythm"][holiday].max() >= 0.5)
        # the other days are judged as before
        np.testing.assert_array_equal(us.alert[: 14 * DAY], none.alert[: 14 * DAY])
    assert paged_without >= 2


def test_the_holiday_mask_moves_a_day_to_the_weekend_class() -> None:
    # a week of 5-minute buckets, weekdays busy at noon and weekends flat; Wednesday of week 3
    # is flat like a weekend day: a deep drop against the weekday profile, nothing against the
    # weekend one when the mask says it is a holiday
    secs = START.timestamp() + np.arange(21 * 288) * 300.0
    weekday = (np.floor(secs / 86400) + 3) % 7 < 5
    hours = np.mod(secs, 86400) / 3600
    busy = 200 + 800 * np.exp(-0.5 * ((hours - 12) / 3) ** 2)
    wed = (secs >= secs[0] + 16 * 86400) & (secs < secs[0] + 17 * 86400)
    rate = np.where(weekday & ~wed, busy, 200.0)
    x = np.random.default_rng(3).poisson(rate).astype(float)
    sd = np.sqrt(rate)
    plain = Rhythm(bucket_seconds=300, warmup=288).run(secs, x, rate, sd)
    told = Rhythm(bucket_seconds=300, warmup=288).run(secs, x, rate, sd, holiday=wed)
    assert plain.surprise[wed].max() >= 5
    assert told.surprise[wed].max() < 5
    assert np.all(np.abs(told.z[wed]) < 5)


def test_a_snapshot_from_before_the_calendar_and_the_share_gate_restores() -> None:
    idx, x, rush, _ = _traffic_with_slow_incidents(1)
    cut = rush - 60
    state, _ = assert_snapshot_round_trip(idx, x, cut)
    # the layout before: 9 scalars in the rhythm's state, no calendar in the configuration
    state["rhythm"]["state"] = state["rhythm"]["state"][:9]
    del state["config"]["holidays_country"], state["config"]["holidays_subdiv"]
    old = DefaultDetector.restore(state)
    assert old.config == DetectorConfig()
    rest = old.run(idx[cut:], x[cut:])
    assert rest.alert[60:240].any()  # the missing rush hour is still paged
    # a fleet with a calendar takes the old snapshot too (it takes the fleet's calendar)
    fleet = DefaultFleet(DetectorConfig(holidays_country="US"), bucket_seconds=60)
    fleet.restore(int(fleet.add(1)[0]), state)
    with pytest.raises(UsageError, match="another detector configuration"):
        state["config"]["holidays_country"] = "FR"
        fleet.restore(0, state)


def _steady_weekdays(days: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """5-minute buckets from a Monday, counts exactly on a daily curve (no noise: a slot's visits
    agree unless an incident is put in)."""
    secs = START.timestamp() + np.arange(days * 288) * 300.0
    hours = np.mod(secs, 86400) / 3600
    return secs, np.round(200 + 150 * np.sin(2 * np.pi * (hours - 6) / 24))


def _at(day: int, hour: int) -> int:
    return day * 288 + hour * 12


def test_a_slot_that_learned_an_incident_on_consecutive_days_is_unsure() -> None:
    # x1.5 at 14:00-15:00 on Tuesday and Wednesday: two of the slot's first three visits, so the
    # slot's value is the incident's level; the normal Thursday deviates from it, but the slot
    # remembers a normal visit (Monday) too, and its rhythm surprise is lowered
    secs, rate = _steady_weekdays()
    x = rate.copy()
    for d in (1, 2):
        x[_at(d, 14) : _at(d, 15)] = np.round(x[_at(d, 14) : _at(d, 15)] * 1.5)
    sd = np.sqrt(rate)
    out = Rhythm(bucket_seconds=300, warmup=288).run(secs, x, rate, sd)
    full = Rhythm(bucket_seconds=300, warmup=288, unsure_penalty=0.0).run(secs, x, rate, sd)
    thursday = slice(_at(3, 14), _at(3, 15))
    assert out.unsure[thursday].all()
    assert np.all(full.signal[thursday][-3:] < -5)  # a drop against the learned incident
    lowered = full.surprise[thursday] - out.surprise[thursday]
    assert np.all(lowered[full.surprise[thursday] >= 2.0] > 1.9)
    # the rest of the week the slots agree with their visits: nothing is lowered
    assert not out.unsure[_at(1, 0) : _at(1, 14)].any()


def test_a_fresh_incident_on_a_slot_whose_visits_agree_is_scored_in_full() -> None:
    secs, rate = _steady_weekdays()
    x = rate.copy()
    drop = slice(_at(9, 10), _at(9, 11))
    x[drop] = np.round(x[drop] * 0.5)
    sd = np.sqrt(rate)
    out = Rhythm(bucket_seconds=300, warmup=288).run(secs, x, rate, sd)
    full = Rhythm(bucket_seconds=300, warmup=288, unsure_penalty=0.0).run(secs, x, rate, sd)
    assert not out.unsure[drop].any()
    assert out.surprise[drop].max() > 5
    np.testing.assert_array_equal(out.surprise, full.surprise)


def test_a_ramp_is_judged_the_same_whether_or_not_the_baseline_followed_it() -> None:
    # the baseline's noise scale grows with its forecast (here sigma = 5% of it, power 1): when the
    # forecast follows a ramp to 2x, the rhythm must still judge the ramp with the noise at the
    # profile's level, not with the doubled noise of the level the ramp reached
    secs = START.timestamp() + np.arange(14 * 288) * 300.0
    hours = np.mod(secs, 86400) / 3600
    rate = 1000 * (2 + np.sin(2 * np.pi * (hours - 6) / 24))
    x = np.random.default_rng(2).poisson(
        rate * np.random.default_rng(3).gamma(400, 1 / 400, rate.size)
    )
    x = x.astype(float)
    ramp = slice(10 * 288 + 150, 10 * 288 + 162)  # a Friday, 12:30-13:30
    x[ramp] = np.round(x[ramp] * np.linspace(1.1, 2.0, 12))
    followed = rate.copy()
    followed[ramp] = x[ramp]
    power = np.ones(x.size)
    rh = Rhythm(bucket_seconds=300, warmup=288)
    steady = rh.run(secs, x, rate, 0.05 * rate, power=power)
    chased = rh.run(secs, x, followed, 0.05 * followed, power=power)
    np.testing.assert_allclose(chased.z[ramp], steady.z[ramp], rtol=1e-3)
    assert chased.surprise[ramp].max() == steady.surprise[ramp].max() > 5
    # read with the forecast's own noise scale, the ramp's end would look half as deviant
    naive = rh.run(secs, x, followed, 0.05 * followed)
    assert naive.z[ramp][-1] < 0.6 * steady.z[ramp][-1]


def test_an_unsure_slot_judges_against_a_level_two_of_its_visits_saw() -> None:
    # 10:00-11:00 on Tuesday and Wednesday of the second week ran at 1.8x: with Monday's, the
    # slot's last three visits held the incident twice, so its value learned it; Thursday and
    # Friday were normal again. On Monday of week three two visits support the normal level: no
    # deviation (read against the value alone, still half way to the incident: -5 σ and more)
    secs = START.timestamp() + np.arange(15 * 288) * 300.0
    hours = np.mod(secs, 86400) / 3600
    rate = 1000 * (2 + np.sin(2 * np.pi * (hours - 6) / 24))
    x = np.random.default_rng(5).poisson(rate).astype(float)
    for day in (8, 9):
        x[day * 288 + 120 : day * 288 + 132] = np.round(x[day * 288 + 120 : day * 288 + 132] * 1.8)
    monday = slice(14 * 288 + 120, 14 * 288 + 132)
    runs = {
        nearest: Rhythm(bucket_seconds=300, warmup=288, nearest=nearest).run(
            secs, x, rate, np.sqrt(rate)
        )
        for nearest in (True, False)
    }
    assert runs[True].open[monday].all() and runs[True].unsure[monday].all()
    assert np.abs(runs[True].z[monday]).max() < 4
    assert runs[True].surprise[monday].max() == 0
    assert runs[False].z[monday].max() < -4
    assert runs[False].surprise[monday].max() > 0
