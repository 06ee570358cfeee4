"""The NAB scorer: hand-computed cases, properties, and the published reference numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rushhour.evaluate import nab

NAB = Path("/work/shared/nab")


def _file(scores: np.ndarray, windows: list[tuple[int, int]], name: str = "a.csv") -> nab.FileRows:
    return nab.prepare_file(name, np.arange(len(scores)), scores, windows)


def test_hand_computed_file() -> None:
    # 100 rows, probation 15, one window over rows 50..59 (width 10)
    s = np.zeros(100)
    s[[10, 20, 52, 55, 80]] = 1.0  # row 10 is probationary; 20 precedes the window; 80 follows it
    f = _file(s, [(50, 59)])
    sig = lambda y: 2 / (1 + math.exp(5 * y)) - 1  # noqa: E731
    tp = sig(-(59 - 52 + 1) / 10) / sig(-1.0)
    fp_before = -1.0 * 0.11
    fp_after = sig(abs(59 - 80) / (10 - 1)) * 0.11
    expected_raw = tp + fp_before + fp_after
    got = nab.score_at([f], nab.STANDARD, 0.5)
    assert got.raw == pytest.approx(expected_raw, abs=1e-12)
    assert got.normalized == pytest.approx(100 * (expected_raw + 1) / 2, abs=1e-9)
    assert got.counts == {"tp": 1, "fn": 0, "fp": 2}
    # reward_low_FN_rate: a miss costs 2, null is -2, perfect +1
    miss = nab.score_at([_file(np.zeros(100), [(50, 59)])], nab.LOW_FN, 0.5)
    assert miss.raw == -2.0 and miss.normalized == 0.0


def test_probationary_length_follows_nab() -> None:
    assert nab.probationary_length(4032) == 604
    assert nab.probationary_length(10320) == 750
    assert nab.probationary_length(6) == 0


def test_optimizer_picks_the_best_global_threshold() -> None:
    # file a: a window hit at score 0.9 and an FP at 0.5; the best threshold keeps the hit only
    a = np.zeros(200)
    a[100], a[150] = 0.9, 0.5
    b = np.zeros(200)
    b[120] = 0.4  # b's window is only caught at 0.4, but a's FP at 0.5 costs just 0.11
    files = [_file(a, [(95, 110)], "a"), _file(b, [(115, 130)], "b")]
    best = nab.optimize(files, nab.STANDARD)
    assert best.threshold == 0.4
    assert best.counts == {"tp": 2, "fn": 0, "fp": 1}
    sw = nab.sweep(files, nab.STANDARD)
    assert sw.thresholds[0] == np.inf and sw.raw[0] == sw.null
    assert max(sw.raw) == pytest.approx(best.raw)


windows_strategy = st.integers(min_value=200, max_value=600).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(100, n - 20), st.integers(1, 15)), min_size=1, max_size=4),
    )
)


def _disjoint(n: int, raw: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, width in sorted(raw):
        hi = min(lo + width, n - 1)
        if not out or lo > out[-1][1] + 1:
            out.append((lo, hi))
    return out


@settings(max_examples=60, deadline=None)
@given(windows_strategy)
def test_perfect_scores_100_and_null_0(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, raw = case
    wins = _disjoint(n, raw)
    perfect = np.zeros(n)
    for lo, _ in wins:
        perfect[lo] = 1.0
    f = _file(perfect, wins)
    assert nab.score_at([f], nab.STANDARD, 0.5).normalized == pytest.approx(100.0)
    assert nab.optimize([f], nab.STANDARD).normalized == pytest.approx(100.0)
    assert nab.score_at([_file(np.zeros(n), wins)], nab.STANDARD, 0.5).normalized == 0.0


@settings(max_examples=60, deadline=None)
@given(windows_strategy, st.data())
def test_an_earlier_true_detection_never_lowers_the_score(
    case: tuple[int, list[tuple[int, int]]], data: st.DataObject
) -> None:
    n, raw = case
    wins = _disjoint(n, raw)
    lo, hi = wins[0]
    late = data.draw(st.integers(lo, hi))
    early = data.draw(st.integers(lo, late))
    base = np.zeros(n)
    base[late] = 1.0
    more = base.copy()
    more[early] = 1.0
    for p in nab.PROFILES:
        before = nab.score_at([_file(base, wins)], p, 0.5).raw
        after = nab.score_at([_file(more, wins)], p, 0.5).raw
        assert after >= before - 1e-12


@settings(max_examples=40, deadline=None)
@given(windows_strategy, st.lists(st.floats(0, 1), min_size=5, max_size=5))
def test_sweep_agrees_with_direct_scoring(
    case: tuple[int, list[tuple[int, int]]], levels: list[float]
) -> None:
    n, raw = case
    wins = _disjoint(n, raw)
    rng = np.random.default_rng(len(wins) + n)
    scores = np.array(levels)[rng.integers(0, 5, size=n)]
    f = _file(scores, wins)
    sw = nab.sweep([f], nab.STANDARD)
    for thr, total in zip(sw.thresholds[1:], sw.raw[1:], strict=True):
        assert nab.score_at([f], nab.STANDARD, thr).raw == pytest.approx(total, abs=1e-9)


@pytest.mark.skipif(not NAB.is_dir(), reason="NAB development subset not at /work/shared/nab")
def test_reproduces_the_published_random_cut_forest_scores() -> None:
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    files = []
    for path in sorted((NAB / "reference" / "randomCutForest").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name.removeprefix('randomCutForest_')}"
        frame = pd.read_csv(path)
        ts = pd.to_datetime(frame["timestamp"]).to_numpy()
        wins = [
            (np.datetime64(pd.Timestamp(a)), np.datetime64(pd.Timestamp(b)))
            for a, b in labels[name]
        ]
        files.append(nab.prepare_file(name, ts, frame["anomaly_score"].to_numpy(), wins))
    profiles = {p.name: p for p in nab.load_profiles(NAB / "profiles.json")}
    got = {name: round(nab.optimize(files, p).normalized, 2) for name, p in profiles.items()}
    assert got == {"standard": 49.53, "reward_low_FP_rate": 38.21, "reward_low_FN_rate": 56.05}
    assert len(files) == 35 and sum(f.n_windows for f in files) == 55
