"""Many series stepped together give each series exactly what it gets alone, however it is batched."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rushhour.detect.default import DefaultDetector, DefaultFleet, Detections, DetectorConfig
from rushhour.errors import UsageError
from rushhour.pipeline.detectors import DetectorBank, default_verdicts
from rushhour.settings import load_settings

MINUTE = 60
T0 = 1_767_571_200  # Monday 2026-01-05 00:00 UTC
NS = 1_000_000_000


def _series(seed: int, n: int) -> np.ndarray:
    """Request counts with a daily rhythm, a few spikes and drops, and missing buckets."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 50 + 400 * rng.random()
    x = rng.poisson(level * (1.2 + np.sin(2 * np.pi * (t / 1440 + rng.random())))).astype(float)
    for i in rng.choice(n, size=max(n // 800, 1), replace=False):
        x[i : i + rng.integers(1, 20)] *= rng.choice([0.1, 3.0])
    x[rng.random(n) < 0.01] = np.nan
    return x


def _alone(config: DetectorConfig, starts: np.ndarray, x: np.ndarray) -> Detections:
    return DefaultDetector(config, bucket_seconds=MINUTE).run(
        pd.to_datetime(starts, unit="s", utc=True), x
    )


ARRAYS = [f.name for f in fields(Detections) if f.name != "components"]
EXACT = ("alert", "severity", "anomalous", "warm")


def _assert_same(got: Detections, want: Detections) -> None:
    for name in ARRAYS:
        if name in EXACT:
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        else:
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12, atol=0)
    assert got.components.keys() == want.components.keys()
    for name, values in want.components.items():
        np.testing.assert_allclose(got.components[name], values, rtol=1e-12, atol=0)


def _take(res: Detections, pos: np.ndarray) -> Detections:
    arrays = {name: getattr(res, name)[pos] for name in ARRAYS}
    return Detections(components={k: v[pos] for k, v in res.components.items()}, **arrays)


def _concat(parts: list[Detections]) -> Detections:
    arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in ARRAYS}
    components = {k: np.concatenate([p.components[k] for p in parts]) for k in parts[0].components}
    return Detections(components=components, **arrays)


CONFIGS = {
    "shipped": DetectorConfig(),
    "discord, New York, fisher": DetectorConfig(
        components=("residual", "shift", "range", "discord"),
        timezone="America/New_York",
        combine="fisher",
    ),
    "without likelihood": DetectorConfig(likelihood=False, holdoff=5, warmup=20),
}


@settings(max_examples=12, deadline=None)
@given(
    config=st.sampled_from(sorted(CONFIGS)),
    n_series=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    batch_minutes=st.lists(st.integers(1, 700), min_size=1, max_size=6),
)
def test_fleet_equals_each_series_alone(
    config: str, n_series: int, seed: int, batch_minutes: list[int]
) -> None:
    # series that start at different times and last different lengths (the calibrated path opens
    # after 4320 buckets), fed in batches of varying spans of time: a batch holds several buckets
    # of a series, or none of it; series join the fleet when first seen
    cfg = CONFIGS[config]
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, 600, size=n_series)
    lengths = rng.integers(300, 5000, size=n_series)
    lengths[0] = 4800
    values = [_series(seed + k, int(lengths[k])) for k in range(n_series)]
    starts = [T0 + MINUTE * (int(offsets[k]) + np.arange(lengths[k])) for k in range(n_series)]
    want = [_alone(cfg, starts[k], values[k]) for k in range(n_series)]

    fleet = DefaultFleet(cfg, bucket_seconds=MINUTE)
    rows: dict[int, int] = {}
    got: list[list[Detections]] = [[] for _ in range(n_series)]
    t, end, b = T0, max(int(s[-1]) for s in starts) + MINUTE, 0
    while t < end:
        t_next = t + MINUTE * batch_minutes[b % len(batch_minutes)]
        b += 1
        parts = []
        for k in rng.permutation(n_series).tolist():
            pos = np.flatnonzero((starts[k] >= t) & (starts[k] < t_next))
            if pos.size:
                if k not in rows:
                    rows[k] = int(fleet.add(1)[0])
                parts.append((k, pos))
        t = t_next
        if not parts:
            continue
        # series interleaved at random, each in time order
        owner = rng.permutation(np.concatenate([np.full(p.size, k) for k, p in parts]))
        slot = {k: iter(p.tolist()) for k, p in parts}
        which = [next(slot[k]) for k in owner.tolist()]
        res = fleet.run(
            np.array([rows[k] for k in owner.tolist()]),
            np.array([int(starts[k][i]) for k, i in zip(owner, which, strict=True)]) * NS,
            np.array([values[k][i] for k, i in zip(owner, which, strict=True)]),
        )
        for k, _ in parts:
            got[k].append(_take(res, np.flatnonzero(owner == k)))
    for k in range(n_series):
        _assert_same(_concat(got[k]), want[k])


def test_a_series_snapshot_continues_in_another_fleet_at_another_row() -> None:
    cfg = DetectorConfig(components=("residual", "shift", "range", "discord"))
    x = [_series(s, 3000) for s in range(3)]
    starts = T0 + MINUTE * np.arange(3000)
    want = _alone(cfg, starts, x[1])
    first = DefaultFleet(cfg, bucket_seconds=MINUTE)
    first.add(3)
    head = np.arange(2000)
    for row in range(3):
        first.run(np.full(2000, row), starts[head] * NS, x[row][head])
    state = json.loads(json.dumps(first.snapshot(1), allow_nan=False))
    second = DefaultFleet(cfg, bucket_seconds=MINUTE)
    second.add(5)
    second.restore(4, state)
    tail = np.arange(2000, 3000)
    res = second.run(np.full(1000, 4), starts[tail] * NS, x[1][tail])
    _assert_same(res, _take(want, tail))


def test_a_snapshot_of_another_configuration_or_width_is_refused() -> None:
    det = DefaultDetector(bucket_seconds=MINUTE)
    det.run(pd.date_range("2026-01-05", periods=10, freq="1min", tz="UTC"), np.ones(10))
    fleet = DefaultFleet(DetectorConfig(threshold=0.6), bucket_seconds=MINUTE)
    fleet.add(1)
    with pytest.raises(UsageError, match="another detector configuration"):
        fleet.restore(0, det.snapshot())
    other = DefaultFleet(bucket_seconds=300)
    other.add(1)
    with pytest.raises(UsageError, match="60-second buckets, this detector's are 300 seconds"):
        other.restore(0, det.snapshot())


def test_the_bank_scores_a_shuffled_batch_as_each_series_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # what the live pipeline does: one batch of closed buckets of many series, in any order
    bank = DetectorBank(load_settings(environ={}, overrides={"data_dir": str(tmp_path)}))
    assert bank.default_config is not None
    keys = [f"s{k}" for k in range(4)]
    x = {k: _series(i, 600) for i, k in enumerate(keys)}
    starts = T0 + MINUTE * np.arange(600)
    rng = np.random.default_rng(0)
    got: dict[str, list[object]] = {k: [None] * 600 for k in keys}
    for lo in range(0, 600, 150):
        batch = [(k, i) for k in keys[: 2 + lo // 150] for i in range(lo, lo + 150)]
        batch = [batch[j] for j in rng.permutation(len(batch))]
        scored = bank.default_scores(
            [k for k, _ in batch],
            np.array([starts[i] for _, i in batch]),
            np.array([x[k][i] for k, i in batch]),
        )
        assert scored is not None
        verdicts, _ = scored
        for (k, i), v in zip(batch, verdicts, strict=True):
            got[k][i] = v
    for k in keys:
        seen = [i for i in range(600) if got[k][i] is not None]
        det = DefaultDetector(bank.default_config, bucket_seconds=MINUTE)
        alone = det.run(pd.to_datetime(starts[seen], unit="s", utc=True), x[k][seen])
        assert got[k][seen[0] : seen[-1] + 1] == default_verdicts(alone, x[k][seen])
        # the series' detector in the bank is a view of its row, in the same state
        assert bank.default_snapshot(k) == det.snapshot()


def test_the_live_pipeline_passes_its_holiday_calendar(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"data_dir": str(tmp_path), "holidays_country": "DE", "holidays_subdiv": "BY"}
    bank = DetectorBank(load_settings(environ={}, overrides=env))
    assert bank.default_config is not None
    assert (bank.default_config.holidays_country, bank.default_config.holidays_subdiv) == (
        "DE",
        "BY",
    )
    plain = DetectorBank(load_settings(environ={}, overrides={"data_dir": str(tmp_path)}))
    assert plain.default_config is not None
    assert plain.default_config.holidays_country == "US"  # the settings' default
