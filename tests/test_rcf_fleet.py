"""Many forests scored in one call, learning deferred after the commit: the verdicts, running
thresholds and forests are exactly those of each series' forest stepped bucket by bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rushhour.detect.base import Verdict
from rushhour.detect.rcf.detector import RCFDetector
from rushhour.detect.rcf.forest import RCFConfig
from rushhour.errors import UsageError
from rushhour.pipeline.detectors import DetectorBank
from rushhour.settings import load_settings


def _bank(workers: int = 2) -> DetectorBank:
    settings = load_settings(
        environ={},
        overrides={
            "detect": {"rcf": True, "rcf_trees": 12, "rcf_samples": 32, "rcf_shingle": 4},
            "pipeline": {"workers": workers},
        },
    )
    return DetectorBank(settings)


def _batches(seed: int) -> list[tuple[list[str], np.ndarray]]:
    """Batches of closed buckets: series joining at different times, 0-3 buckets of a series per
    batch (each series' in time order, series interleaved), a spike or a drop now and then."""
    rng = np.random.default_rng(seed)
    keys = [f"s{i}" for i in range(9)]
    joined = {k: int(rng.integers(0, 40)) for k in keys}
    out = []
    for b in range(90):
        own: dict[str, list[float]] = {}
        for i, k in enumerate(keys):
            for _ in range(int(rng.integers(0, 4)) if b >= joined[k] else 0):
                v = float(rng.poisson(200 + 50 * i))
                if rng.random() < 0.03:
                    v *= float(rng.choice([0.1, 6.0]))
                own.setdefault(k, []).append(v)
        seq = [k for k, vs in own.items() for _ in vs]
        seq = [seq[i] for i in rng.permutation(len(seq))]
        taken: dict[str, int] = {}
        values = []
        for k in seq:
            values.append(own[k][taken.get(k, 0)])
            taken[k] = taken.get(k, 0) + 1
        out.append((seq, np.array(values)))
    return out


def _same(a: Verdict | None, b: Verdict | None) -> None:
    assert a is not None and b is not None
    assert (a.score, a.anomalous, a.direction, a.severity) == (
        b.score,
        b.anomalous,
        b.direction,
        b.severity,
    )
    assert a.explanation == b.explanation


def _state_equal(a: DetectorBank, b: DetectorBank) -> None:
    assert a.forests.keys() == b.forests.keys()
    for key, da in a.forests.items():
        db = b.forests[key]
        assert (da.n_, da.mean_, da.m2_) == (db.n_, db.mean_, db.m2_)
        fa, fb = da.forest, db.forest
        assert fa.records_ == fb.records_
        assert fa.arrays_ is not None and fb.arrays_ is not None
        for name, x in fa.arrays_.as_dict().items():
            assert np.array_equal(x, getattr(fb.arrays_, name)), name


@pytest.mark.parametrize("seed", [0, 1])
def test_deferred_batches_equal_score_and_learn_per_bucket(seed: int) -> None:
    fleet, single = _bank(), _bank()
    scored = 0
    for keys, values in _batches(seed):
        got = fleet.rcf_scores(keys, values)
        want = [single.rcf_score(k, v) for k, v in zip(keys, values.tolist(), strict=True)]
        for g, w in zip(got, want, strict=True):
            _same(g, w)
            scored += w is not None and w.score > 0
        fleet.learn_pending()  # after the commit
    assert scored > 500  # most buckets were scored by warm forests, not only learned
    _state_equal(fleet, single)


def test_pending_buckets_are_learned_before_the_next_batch_is_scored() -> None:
    """A caller that never settles still gets the per-bucket verdicts."""
    fleet, single = _bank(), _bank()
    for keys, values in _batches(2):
        got = fleet.rcf_scores(keys, values)
        want = [single.rcf_score(k, v) for k, v in zip(keys, values.tolist(), strict=True)]
        for g, w in zip(got, want, strict=True):
            _same(g, w)
    fleet.learn_pending()
    _state_equal(fleet, single)


def test_results_do_not_depend_on_the_thread_count() -> None:
    one, two = _bank(workers=1), _bank(workers=2)
    for keys, values in _batches(3):
        for a, b in zip(one.rcf_scores(keys, values), two.rcf_scores(keys, values), strict=True):
            _same(a, b)
        one.learn_pending()
        two.learn_pending()
    _state_equal(one, two)


def test_dropped_pending_buckets_are_not_learned() -> None:
    bank = _bank()
    batches = _batches(4)
    for keys, values in batches[:60]:
        bank.rcf_scores(keys, values)
        bank.learn_pending()
    keys, values = batches[60]
    before = {k: (d.forest.records_, d.n_) for k, d in bank.forests.items()}
    bank.rcf_scores(keys, values)
    bank.drop_pending()
    bank.learn_pending()
    after = {k: (d.forest.records_, d.n_) for k, d in bank.forests.items()}
    learned = {k: after[k][0] - before.get(k, (0, 0))[0] for k in after}
    warm = {k for k, d in bank.forests.items() if d.forest.records_ - learned[k] >= 32}
    assert len(warm) >= 5
    # each warm series learned its buckets in the batch but the last one (a forest still warming
    # up learns each bucket at once: it does not score them)
    for k in set(keys):
        assert learned[k] == keys.count(k) - (k in warm)


_FRESH = """
import json
from rushhour.detect.rcf import fleet
from tests.test_rcf_fleet import _bank, _batches

bank = _bank()
bank.prime()
scores = []
for keys, values in _batches(5):
    scores += [None if v is None else v.score for v in bank.rcf_scores(keys, values)]
    bank.learn_pending()
cache = {
    f.__name__: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
    for f in (fleet._list_of, fleet._append)
}
print(json.dumps({"scores": scores, "cache": cache}))
"""


def test_a_fresh_process_builds_the_table_from_the_cached_functions_with_the_same_scores() -> None:
    """The table's typed lists are built by compiled functions cached on disk: a new process
    loads them (no compilation at start) and scores as each forest stepped bucket by bucket."""
    bank = _bank()
    bank.prime()  # compiles (or loads) the cached functions here, so the child finds them on disk
    want = []
    single = _bank()
    for keys, values in _batches(5):
        want += [single.rcf_score(k, v) for k, v in zip(keys, values.tolist(), strict=True)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", _FRESH],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    got = json.loads(out.stdout)
    # loaded from the disk cache, one signature per array type, none compiled
    assert all(hits >= 1 and misses == 0 for hits, misses in got["cache"].values()), got["cache"]
    assert got["scores"] == [None if w is None else w.score for w in want]
    assert sum(s is not None and s > 0 for s in got["scores"]) > 500


def test_an_adopted_forest_is_scored_like_its_original() -> None:
    """A copy adopted under another key joins the scoring table at once and gives its original's
    verdicts, running threshold and arrays on the same buckets."""
    source, bank = _bank(), _bank()
    warm = np.random.default_rng(5).poisson(300, size=120).astype(float)
    source.warm_forest("orig", warm)
    det = source.forests["orig"]
    bank.adopt_forest("copy", replace(det, forest_=det.forest.copy()))
    assert len(bank._table) == 1  # registered at adoption, not by the first live batch
    values = np.random.default_rng(6).poisson(300, size=40).astype(float)
    values[25] *= 6.0
    for v in values.tolist():
        got = bank.rcf_scores(["copy"], np.array([v]))[0]
        want = source.rcf_scores(["orig"], np.array([v]))[0]
        _same(got, want)
        bank.learn_pending()
        source.learn_pending()
    assert bank.forests["copy"].threshold() == source.forests["orig"].threshold()
    assert any(v.anomalous for v in bank.rcf_scores(["copy"], np.array([2000.0])) if v)
    a, b = bank.forests["copy"].forest.arrays_, source.forests["orig"].forest.arrays_
    assert a is not None and b is not None and a is not b
    for name, x in a.as_dict().items():
        assert np.array_equal(x, getattr(b, name)), name


def test_a_forest_of_another_shape_is_not_adopted() -> None:
    other = RCFDetector(RCFConfig(number_of_trees=20, sub_sample_size=32, shingle_size=4))
    with pytest.raises(UsageError, match="cannot adopt"):
        _bank().adopt_forest("s", other)


def test_buckets_scored_ahead_give_the_verdicts_of_scoring_at_close() -> None:
    """Each series' next bucket scored before it closes, sometimes at a value that a late record
    then changes: the verdicts and forests are those of scoring every bucket when it closes, and
    the unchanged buckets are not scored again."""
    fleet, single = _bank(), _bank()
    rng = np.random.default_rng(7)
    batches = _batches(8)
    reused = 0
    for b, (keys, values) in enumerate(batches):
        got = fleet.rcf_scores(keys, values)
        want = [single.rcf_score(k, v) for k, v in zip(keys, values.tolist(), strict=True)]
        for g, w in zip(got, want, strict=True):
            _same(g, w)
        fleet.learn_pending()
        if b + 1 < len(batches):  # the next batch's first bucket of each series, as it stands
            nxt, nvalues = batches[b + 1]
            first = {k: v for k, v in reversed(list(zip(nxt, nvalues.tolist(), strict=True)))}
            late = rng.random(len(first)) < 0.2  # changed by a late record before it closes
            ahead = np.array(list(first.values())) + late
            fleet.score_ahead(list(first), ahead)
            warm = [k in fleet.forests and fleet.forests[k].forest.is_warm for k in first]
            reused += int(np.sum(np.array(warm, dtype=bool) & ~late))
    _state_equal(fleet, single)
    assert reused > 200
    assert fleet.ahead_used == reused  # the unchanged buckets of warm forests were not rescored


def test_buckets_scored_ahead_are_dropped_with_a_failed_batch() -> None:
    bank = _bank()
    for keys, values in _batches(9)[:60]:
        bank.rcf_scores(keys, values)
        bank.learn_pending()
    keys = list(bank.forests)
    bank.score_ahead(keys, np.full(len(keys), 500.0))
    bank.drop_pending()
    bank.rcf_scores(keys, np.full(len(keys), 500.0))
    assert bank.ahead_used == 0
