"""Event-time bucketing: totals preserved, nothing lost or doubled across batches, zeros visible."""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rushhour.pipeline.bucketizer import EventTimeBucketizer

events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]), st.floats(0, 3600, allow_nan=False), st.integers(0, 50)
    ),
    max_size=300,
)


def _feed(b: EventTimeBucketizer, evs: list, cuts: list[int]):  # type: ignore[no-untyped-def]
    updates = []
    bounds = sorted({0, len(evs), *[c % (len(evs) + 1) for c in cuts]})
    for lo, hi in itertools.pairwise(bounds):
        part = evs[lo:hi]
        updates.append(
            b.add([e[0] for e in part], [e[1] for e in part], [float(e[2]) for e in part])
        )
    return updates


@settings(max_examples=150, deadline=None)
@given(
    events,
    st.lists(st.integers(0, 300), max_size=6),
    st.sampled_from([60, 300]),
    st.sampled_from([0, 120]),
)
def test_totals_preserved_across_any_batch_split(evs, cuts, width, lateness) -> None:  # type: ignore[no-untyped-def]
    b = EventTimeBucketizer(width, lateness)
    updates = _feed(b, evs, cuts)
    stored: dict[tuple[str, int], float] = {}
    for u in updates:
        for (k, s), v in {**u.deltas}.items():
            stored[(k, s)] = stored.get((k, s), 0.0) + v
        for (k, s), v in u.late.items():
            stored[(k, s)] = stored.get((k, s), 0.0) + v
    assert sum(stored.values()) == sum(e[2] for e in evs)  # no record lost or counted twice
    for key in {e[0] for e in evs}:
        expected: dict[int, float] = {}
        for k, t, v in evs:
            if k == key:
                s = int(np.floor(t / width) * width)
                expected[s] = expected.get(s, 0.0) + v
        got = {s: v for (k, s), v in stored.items() if k == key}
        assert got == {s: v for s, v in expected.items() if s in got}
        assert set(expected) == set(got)
    closed = [c for u in updates for c in u.closed]
    assert len({(c.key, c.start) for c in closed}) == len(closed), "a bucket closed twice"
    late_keys = {key for u in updates for key in u.late}
    assert all(s < (b.closed_until or 0) for _, s in late_keys)  # late means: its bucket had closed
    assert sum(u.late_records for u in updates) >= len(late_keys)


def test_covered_minutes_without_records_close_as_zero() -> None:
    b = EventTimeBucketizer(60, 0)
    b.add(["s"], [10.0], [3.0])
    closed = b.add(["s"], [250.0], [1.0]).closed
    assert [(c.start, c.value) for c in closed] == [(0, 3.0), (60, 0.0), (120, 0.0), (180, 0.0)]


def test_watermark_trails_by_lateness_and_late_records_are_counted() -> None:
    b = EventTimeBucketizer(60, 120)
    b.add(["s"], [0.0], [1.0])
    assert b.add(["s"], [179.0], [1.0]).closed == []  # watermark 59: nothing has ended
    closed = b.add(["s"], [181.0], [1.0]).closed  # watermark 61: [0, 60) ends
    assert [(c.start, c.value) for c in closed] == [(0, 1.0)]
    late = b.add(["s"], [30.0], [5.0])
    assert late.late == {("s", 0): 5.0} and late.late_records == 1 and not late.deltas


@given(events, st.integers(0, 300))
def test_snapshot_restore_with_open_buckets_continues_identically(evs, cut) -> None:  # type: ignore[no-untyped-def]
    whole = EventTimeBucketizer(60, 120)
    a = _feed(whole, evs, [cut])
    first = EventTimeBucketizer(60, 120)
    part = evs[: cut % (len(evs) + 1)]
    u1 = first.add([e[0] for e in part], [e[1] for e in part], [float(e[2]) for e in part])
    # what a store would hold: open buckets' partial sums, and each series' first bucket
    second = EventTimeBucketizer(60, 120).restore(
        first.snapshot(), dict(first.open), dict(first.first)
    )
    rest = evs[len(part) :]
    u2 = second.add([e[0] for e in rest], [e[1] for e in rest], [float(e[2]) for e in rest])
    closed_whole = [(c.key, c.start, c.value) for u in a for c in u.closed]
    assert [(c.key, c.start, c.value) for c in u1.closed + u2.closed] == closed_whole
