"""Bucketing: half-open epoch-aligned buckets, zeros vs gaps, totals preserved, incremental form."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rushhour.errors import UsageError
from rushhour.ingest.batch import RecordBatch
from rushhour.series import bucketing
from rushhour.series.bucketing import Bucketizer, bucketize, spread


def batch(
    ts: list[int],
    source: str = "a",
    span: tuple[int, int] | None = None,
    labels: list[str] | None = None,
) -> RecordBatch:
    data: dict[str, object] = {"ts": ts}
    if labels is not None:
        data["action"] = labels
    return RecordBatch(
        pl.DataFrame(
            data, schema={"ts": pl.Int64, **({"action": pl.String} if labels is not None else {})}
        ),
        source=source,
        values=("requests",),
        labels=("action",) if labels is not None else (),
        span=span or ((min(ts), max(ts)) if ts else None),
        counted=("requests",),
    )


def test_half_open_buckets_aligned_to_the_epoch() -> None:
    res = bucketize([batch([59, 60, 299, 300])], 300)
    assert res["requests"].starts.tolist() == [0, 300] and res["requests"].values.tolist() == [
        3.0,
        1.0,
    ]


def test_covered_quiet_minutes_are_zero_and_uncovered_periods_are_gaps() -> None:
    res = bucketize([batch([0, 250], "f1"), batch([600, 610], "f2")], 60)
    s = res["requests"]
    assert s.values[:5].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert np.isnan(s.values[5:10]).all() and s.values[10] == 2.0
    assert res.gaps() == [(300, 600)] and s.gaps() == [(300, 600)]


def test_two_blocks_of_one_source_do_not_open_a_gap_between_them() -> None:
    res = bucketize([batch([0, 10], "f"), batch([600], "f")], 60)
    assert not res.gaps() and res["requests"].values.tolist() == [2.0] + [0.0] * 9 + [1.0]


def test_declared_coverage_for_streams() -> None:
    bz = Bucketizer(60)
    bz.cover(0, 300)
    bz.add(batch([120], span=(120, 120)))
    assert bz.result()["requests"].values.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]


def test_spread_preserves_totals_and_rejects_bad_width() -> None:
    b, v, _ = spread(np.array([0, 100]), np.array([300, 0]), np.array([10.0, 4.0]), 60)
    assert v.sum() == pytest.approx(14.0) and b.tolist() == [0, 60, 120, 180, 240, 60]
    with pytest.raises(UsageError, match="positive"):
        Bucketizer(0)


@settings(max_examples=80, deadline=None)
@given(
    ts=st.lists(st.integers(0, 20_000), min_size=1, max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    width=st.sampled_from([1, 7, 60, 300, 3600]),
)
def test_totals_are_preserved_and_incremental_equals_one_shot(
    ts: list[int], cuts: list[int], width: int
) -> None:
    labels = ["ACCEPT" if t % 3 else "REJECT" for t in ts]
    bounds = sorted({0, len(ts), *(c % (len(ts) + 1) for c in cuts)})
    parts = [
        batch(ts[a:b], "f", labels=labels[a:b]) for a, b in itertools.pairwise(bounds) if b > a
    ]
    bz = Bucketizer(width, compact_every=2)
    for p in parts:
        bz.add(p)
    inc = bz.result()
    one = bucketize([batch(ts, "f", labels=labels)], width)
    assert sum(np.nansum(s.values) for s in inc) == len(ts)
    for s in one:
        assert np.array_equal(inc[s.name].values, s.values)
        for t in ts[:20]:
            k = (t - t % width - s.starts[0]) // width
            assert s.values[k] >= 1 or labels[ts.index(t)] not in s.name


@settings(max_examples=40, deadline=None)
@given(
    samples=st.lists(
        st.tuples(st.integers(0, 5000), st.integers(0, 900), st.integers(0, 50), st.booleans()),
        min_size=1,
        max_size=80,
    ),
    rows=st.integers(1, 20),
)
def test_spreading_in_slices_equals_spreading_at_once(
    samples: list[tuple[int, int, int, bool]], rows: int
) -> None:
    """A long metrics batch is spread a slice of samples at a time; the sums are the same."""
    frame = pl.DataFrame(
        {
            "ts": [s[0] for s in samples],
            "duration": [s[1] for s in samples],
            "requests": [float(s[2]) for s in samples],
            "status": ["ok" if s[3] else "failed" for s in samples],
        }
    )
    b = RecordBatch(frame, source="m", values=("requests",), labels=("status",), span=(0, 6000))

    def run() -> dict[str, list[float]]:
        return {s.name: s.values.tolist() for s in bucketize([b], 60)}

    whole = run()
    saved, bucketing.SPREAD_ROWS = bucketing.SPREAD_ROWS, rows
    try:
        sliced = run()
    finally:
        bucketing.SPREAD_ROWS = saved
    assert sliced.keys() == whole.keys()
    for k in whole:
        assert sliced[k] == pytest.approx(whole[k])
