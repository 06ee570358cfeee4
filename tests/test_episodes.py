from hypothesis import given
from hypothesis import strategies as st

from rushhour.notify.episodes import EpisodeTracker


def test_one_firing_and_one_resolved_per_episode() -> None:
    tr = EpisodeTracker(resolve_after=3)
    flags = [0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]
    changes = [c for i, f in enumerate(flags) for c in tr.observe("s", i * 60, bool(f))]
    assert [(c.status, c.start) for c in changes] == [
        ("firing", 60),
        ("resolved", 60),
        ("firing", 540),
        ("resolved", 540),
    ]
    assert changes[1].buckets == 3 and changes[1].end == 420


def test_series_are_independent() -> None:
    tr = EpisodeTracker(resolve_after=1)
    assert tr.observe("a", 0, True)[0].series == "a"
    assert tr.observe("b", 0, False) == []
    assert tr.observe("a", 60, False)[0].status == "resolved"


@given(st.lists(st.booleans(), max_size=200), st.integers(min_value=0, max_value=199))
def test_snapshot_restore_mid_stream_changes_nothing(flags: list[bool], cut: int) -> None:
    whole = EpisodeTracker(2)
    expected = [c for i, f in enumerate(flags) for c in whole.observe("s", i, f)]
    first = EpisodeTracker(2)
    got = [c for i, f in enumerate(flags[:cut]) for c in first.observe("s", i, f)]
    second = EpisodeTracker(2).restore(first.snapshot())
    got += [
        c
        for i, f in enumerate(flags[cut:], start=min(cut, len(flags)))
        for c in second.observe("s", i, f)
    ]
    assert got == expected
    firing = sum(c.status == "firing" for c in got)
    resolved = sum(c.status == "resolved" for c in got)
    assert firing - resolved in (0, 1)
