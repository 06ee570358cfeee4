"""The streaming and batch forests: structure, scores, attributions, state, parameters."""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rushhour.detect.rcf import (
    BatchConfig,
    BatchRandomCutForest,
    RandomCutForest,
    RCFConfig,
    daily_thresholds,
    kernels,
    load,
    save,
    score_threshold,
)
from rushhour.detect.rcf.forest import ForestArrays, cut_shape, cut_type
from rushhour.detect.rcf.layout import META_END
from rushhour.errors import InputError, NotFittedError, UsageError

SMALL = {"number_of_trees": 8, "sub_sample_size": 32, "time_decay": 500}


def _walk(a: ForestArrays, t: int, node: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Check one subtree's invariants; return its box, mass and number of internal nodes."""
    M, K = a.left.shape[1], a.bmin.shape[1]
    if node >= M:
        p = a.pts[a.lpt[t, node - M]]
        mass = kernels.leaf_mass(a.lmass, t, node - M)
        assert mass >= 1
        return p.copy(), p.copy(), mass, 0
    llo, lhi, lm, ln = _walk(a, t, int(a.left[t, node]))
    rlo, rhi, rm, rn = _walk(a, t, int(a.right[t, node]))
    d, v = kernels.cut_dim(a.cdim, t, node, M), a.cval[t, node]
    assert lhi[d] <= v < rlo[d], "the cut separates the children"
    lo, hi = np.minimum(llo, rlo), np.maximum(lhi, rhi)
    if node < K:
        assert np.array_equal(a.bmin[t, node], lo) and np.array_equal(a.bmax[t, node], hi)
    if a.nmass.shape[1]:
        assert a.nmass[t, node] == lm + rm
    return lo, hi, lm + rm, ln + rn + 1


def _free_list(nxt: np.ndarray, head: int) -> list[int]:
    out = []
    while 0 <= head < len(nxt):  # ends at -1 (at 65535 in a uint16 array)
        out.append(head)
        head = int(nxt[head])
    return out


def check_invariants(forest: RandomCutForest | BatchRandomCutForest) -> None:
    a = forest.arrays_
    assert a is not None
    M, K, S = a.left.shape[1], a.bmin.shape[1], a.lpt.shape[1]
    refs = np.zeros(len(a.vals), dtype=int)
    for t in range(len(a.root)):
        cached = _free_list(a.left[t], int(a.ihead[t, 0]))
        plain = _free_list(a.left[t], int(a.ihead[t, 1]))
        leaves = _free_list(a.lpt[t], int(a.lhead[t]))
        assert all(n < K for n in cached) and all(n >= K for n in plain)
        if a.root[t] < 0:
            assert a.sn[t] == 0 and len(leaves) == S and len(cached) + len(plain) == M
            continue
        _, _, mass, internal = _walk(a, t, int(a.root[t]))
        assert mass == a.sn[t], "tree mass equals the sampler's size"
        assert len(cached) + len(plain) + internal == M, "every internal slot used or free"
        assert len(leaves) + internal + 1 == S, "every leaf slot used or free"
        np.add.at(refs, a.lpt[t, a.spt[t, : a.sn[t]]], 1)
    assert np.array_equal(np.bincount(a.references(), minlength=len(refs)), refs)
    end, k = int(a.meta[META_END]), a.shingle
    assert end <= len(a.vals) <= a.bound
    assert not refs[max(end - k + 1, 0) :].any(), "every referenced point lies inside the store"
    if isinstance(forest, RandomCutForest) and forest.sequence and forest.shingler_ is not None:
        tail = a.vals[end - (k - 1) : end]
        assert np.array_equal(tail, forest.shingler_.buffer_), "the next point's first records"


def test_scores_zero_during_warm_up_then_flag_outlier() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 3))
    X[700] = [6.0, -6.0, 6.0]
    forest = RandomCutForest(RCFConfig(number_of_trees=50, sub_sample_size=64, seed=1))
    scores = forest.process(X).scores
    assert np.all(scores[:64] == 0.0) and np.all(scores[64:] > 0.0)
    assert int(np.argmax(scores)) == 700
    assert scores[700] > 3 * np.median(scores[64:])
    check_invariants(forest)


def test_long_stream_keeps_structure_and_memory_bounded() -> None:
    rng = np.random.default_rng(4)
    forest = RandomCutForest(RCFConfig(seed=2, **SMALL))
    for _ in range(5):
        forest.process(rng.normal(size=(1000, 2)).round(1))  # rounding makes duplicates
        check_invariants(forest)
    # a decay of 500 records keeps the sample recent, so the store holds few points
    assert forest.arrays_ is not None and forest.arrays_.points_in_use() < 8 * 32


def test_attributions_sum_to_scores_with_shingle() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 2))
    X[500] = [0.0, 9.0]
    result = RandomCutForest(
        RCFConfig(number_of_trees=20, sub_sample_size=64, shingle_size=4, seed=3)
    ).process(X, explain=True)
    assert result.high is not None and result.low is not None
    assert result.high.shape == (600, 2)
    np.testing.assert_allclose((result.high + result.low).sum(axis=1), result.scores, rtol=1e-9)
    # the outlier is in column 1, upwards
    assert result.high[500, 1] > result.low[500, 1]
    assert result.high[500, 1] + result.low[500, 1] > result.high[500, 0] + result.low[500, 0]


def test_attributions_of_duplicates_sum_to_scores() -> None:
    X = np.tile(np.array([[1.0], [2.0], [3.0]]), (200, 1))
    forest = RandomCutForest(RCFConfig(number_of_trees=10, sub_sample_size=16, seed=1))
    plain = forest.copy().process(X).scores
    result = forest.process(X, explain=True)
    assert result.high is not None and result.low is not None
    np.testing.assert_allclose((result.high + result.low).sum(axis=1), result.scores, rtol=1e-9)
    np.testing.assert_allclose(plain, result.scores, rtol=1e-9)


def test_chunked_equals_whole_and_score_matches_process() -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 2))
    whole = RandomCutForest(RCFConfig(seed=9, **SMALL))
    a = whole.process(X).scores
    parts = RandomCutForest(RCFConfig(seed=9, **SMALL))
    b = np.concatenate([parts.process(X[i : i + 7]).scores for i in range(0, 300, 7)])
    np.testing.assert_array_equal(a, b)
    nxt = rng.normal(size=2)
    assert whole.score(nxt) == pytest.approx(float(whole.copy().process([nxt]).scores[0]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-3, 3).map(float)),
        min_size=40,
        max_size=160,
    ),
    seed=st.integers(0, 2**31),
    shingle=st.integers(1, 3),
)
def test_properties_nonnegative_deterministic_and_state_round_trip(
    data: list[tuple[float, float]], seed: int, shingle: int
) -> None:
    X = np.array(data)
    cfg = {"number_of_trees": 4, "sub_sample_size": 10, "time_decay": 50, "shingle_size": shingle}
    half = len(X) // 2
    one = RandomCutForest(RCFConfig(seed=seed, **cfg))
    two = RandomCutForest(RCFConfig(seed=seed, **cfg))
    s1 = one.process(X[:half]).scores
    s2 = two.process(X[:half]).scores
    np.testing.assert_array_equal(s1, s2)
    assert np.all(s1 >= 0) and np.all(s1 <= math.log2(11) + 1e-9)
    buf = io.BytesIO()
    save(one, buf)
    buf.seek(0)
    restored = load(buf)
    assert isinstance(restored, RandomCutForest)
    later = one.process(X[half:]).scores
    np.testing.assert_array_equal(later, restored.process(X[half:]).scores)
    np.testing.assert_array_equal(later, two.copy().process(X[half:]).scores)
    assert np.all(later >= 0)
    check_invariants(restored)


def test_seed_changes_scores() -> None:
    X = np.random.default_rng(1).normal(size=(200, 1))
    a = RandomCutForest(RCFConfig(seed=1, **SMALL)).process(X).scores
    b = RandomCutForest(RCFConfig(seed=2, **SMALL)).process(X).scores
    assert not np.array_equal(a, b)


def test_copy_is_independent() -> None:
    X = np.random.default_rng(2).normal(size=(100, 1))
    forest = RandomCutForest(RCFConfig(seed=1, **SMALL))
    forest.process(X)
    twin = forest.copy()
    twin.process(X * 5)
    assert forest.records_ == 100 and twin.records_ == 200
    check_invariants(forest)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"number_of_trees": 0}, r"number_of_trees must be an integer in 1\.\.1000, got 0"),
        ({"number_of_trees": 1001}, r"number_of_trees must be an integer in 1\.\.1000"),
        ({"sub_sample_size": 5}, r"sub_sample_size must be an integer in 10\.\.1000, got 5"),
        ({"shingle_size": 31}, r"shingle_size must be an integer in 1\.\.30, got 31"),
        ({"sub_sample_size": 256, "time_decay": 200}, r"time_decay must be greater than"),
    ],
)
def test_bad_parameters(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RandomCutForest(RCFConfig(**kwargs))


def test_bad_records() -> None:
    forest = RandomCutForest(RCFConfig(seed=1, **SMALL))
    with pytest.raises(UsageError, match=r"1\.\.30 numeric input columns, got 31"):
        forest.process(np.zeros((2, 31)))
    forest.process(np.zeros((2, 2)))
    with pytest.raises(InputError, match="records have 3 columns, the forest was built for 2"):
        forest.process(np.zeros((1, 3)))
    with pytest.raises(InputError, match=r"record 1 column 0 is nan"):
        forest.process([[0.0, 0.0], [math.nan, 1.0]])


def test_state_file_errors(tmp_path: pytest.TempPathFactory) -> None:
    bad = tmp_path / "bad.npz"  # type: ignore[operator]
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a forest file"):
        load(bad)
    other = tmp_path / "other.npz"  # type: ignore[operator]
    header = json.dumps({"format": "rushhour-rcf", "version": 99}).encode()
    np.savez(other, header=np.frombuffer(header, dtype=np.uint8))
    with pytest.raises(InputError, match="version 99 is not supported"):
        load(other)
    old = tmp_path / "old.npz"  # type: ignore[operator]
    header = json.dumps({"format": "rushhour-rcf", "version": 1, "kind": "streaming"}).encode()
    np.savez(old, header=np.frombuffer(header, dtype=np.uint8))
    with pytest.raises(InputError, match=r"version 1 .* cannot be read") as info:
        load(old)
    assert "rushhour train" in info.value.hint


def test_version_2_files_load_and_continue_with_the_same_scores() -> None:
    # written by the version 2 layout (every point stored whole), with the scores it went on to give
    data = Path(__file__).parent / "data"
    expected = np.load(data / "rcf_v2_expected.npz")
    stream = load(data / "rcf_v2_streaming.npz")
    assert isinstance(stream, RandomCutForest)
    check_invariants(stream)
    result = stream.process(expected["stream"], explain=True)
    np.testing.assert_array_equal(result.scores, expected["stream_scores"])
    check_invariants(stream)
    batch = load(data / "rcf_v2_batch.npz")
    assert isinstance(batch, BatchRandomCutForest)
    check_invariants(batch)
    # batch scores climb in float32 (rushhour.detect.rcf.frozen): equal to relative 1e-6
    np.testing.assert_allclose(
        batch.score(expected["queries"]), expected["batch_scores"], rtol=1e-6, atol=0
    )


def test_version_3_files_load_and_continue_with_the_same_scores() -> None:
    # written by the version 3 layout (leaf masses as int16 counts, a byte per cut dimension):
    # a one-column forest of shingles of 4 (its cut dimensions are packed on load), a two-column
    # one of shingles of 3 (6 dimensions: not packed) and a batch forest of 3 dimensions, with the
    # scores they went on to give (tests/data/rcf_v3_*.npz)
    data = Path(__file__).parent / "data"
    expected = np.load(data / "rcf_v3_expected.npz")
    for name, packed in (("narrow", True), ("wide", False)):
        stream = load(data / f"rcf_v3_{name}.npz")
        assert isinstance(stream, RandomCutForest) and stream.arrays_ is not None
        a = stream.arrays_
        assert (a.cdim.shape[1] < a.left.shape[1]) == packed and a.lmass.dtype == np.uint8
        check_invariants(stream)
        result = stream.process(expected[name], explain=True)
        np.testing.assert_array_equal(result.scores, expected[f"{name}_scores"])
        np.testing.assert_array_equal(result.high, expected[f"{name}_high"])
        check_invariants(stream)
    batch = load(data / "rcf_v3_batch.npz")
    assert isinstance(batch, BatchRandomCutForest)
    check_invariants(batch)
    # batch scores climb in float32, summed in an order that can vary by run: relative 1e-6
    np.testing.assert_allclose(
        batch.score(expected["queries"]), expected["batch_scores"], rtol=1e-6, atol=0
    )


def test_cut_dimensions_pack_four_to_a_byte() -> None:
    slots = 10
    dims = np.array([[3, 0, 2, 1, 1, 3, 0, 2, 3, 3], [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]])
    packed = np.zeros(cut_shape(2, slots, 4), dtype=cut_type(4))
    plain = np.zeros(cut_shape(2, slots, 5), dtype=cut_type(5))
    assert packed.shape == (2, 3) and plain.shape == (2, slots)
    for cdim in (packed, plain):
        kernels.pack_cut_dims(dims, cdim)
        np.testing.assert_array_equal(kernels.unpack_cut_dims(cdim, slots), dims)
        kernels.set_cut_dim(cdim, 1, 5, slots, 2)  # rewriting one slot leaves its neighbours
        dims2 = dims.copy()
        dims2[1, 5] = 2
        np.testing.assert_array_equal(kernels.unpack_cut_dims(cdim, slots), dims2)
    assert packed[0, 0] == 3 | 0 << 2 | 2 << 4 | 1 << 6


def test_a_leaf_holds_as_many_copies_as_the_sample() -> None:
    # one value repeated: every tree is a single leaf holding the whole sample (256 copies, stored
    # as 255 in a byte), and a new value still scores above the repeated one
    forest = RandomCutForest(RCFConfig(number_of_trees=5, time_decay=1000, seed=2), dimensions=1)
    forest.process(np.full(5000, 7.0))
    a = forest.arrays_
    assert a is not None and a.lmass.dtype == np.uint8 and a.sn.min() == 256
    assert int(a.leaf_masses()[np.arange(5), a.root - a.left.shape[1]].min()) == 256
    check_invariants(forest)
    assert forest.score([8.0]) > forest.score([7.0])


@pytest.mark.parametrize("columns", [1, 2])
def test_shingled_store_shares_records_and_scores_as_whole_points(columns: int) -> None:
    # internal shingling stores each record once; a forest fed the same shingles as whole points
    # (shingle 1, every point stored apart) builds the same trees, so its scores are the same
    rng = np.random.default_rng(12)
    X = np.round(rng.normal(size=(4000, columns)) * 3)
    k, S = 4, 32
    config = {"number_of_trees": 12, "sub_sample_size": S, "time_decay": 300, "seed": 8}
    shared = RandomCutForest(RCFConfig(shingle_size=k, **config))
    whole = RandomCutForest(RCFConfig(**config))
    windows = np.lib.stride_tricks.sliding_window_view(X, (k, columns))[:, 0]
    points = windows.reshape(len(windows), k * columns)
    got, want = [], []
    for start in range(0, len(X), 500):  # in chunks: the stores compact and resize in between
        got.append(shared.process(X[start : start + 500], explain=True).scores)
        first = max(start - (k - 1), 0)
        want.append(whole.process(points[first : start + 500 - (k - 1)], explain=True).scores)
        check_invariants(shared)
        a = shared.arrays_
        assert a is not None
        # overlapping shingles share records: far fewer than shingle records per stored point
        assert a.records_in_use() < 0.75 * k * a.points_in_use()
    np.testing.assert_array_equal(np.concatenate(got)[S + k - 1 :], np.concatenate(want)[S:])
    b = whole.arrays_
    assert a.vals.shape[0] < b.vals.shape[0] * k and shared.memory_bytes() < whole.memory_bytes()


def test_store_grows_and_shrinks_by_steps() -> None:
    forest = RandomCutForest(
        RCFConfig(number_of_trees=10, sub_sample_size=32, time_decay=5000, shingle_size=2, seed=4)
    )
    rng = np.random.default_rng(2)
    capacities = []
    for _ in range(400):  # 20 records at a time: each growth leaves at least 64 records free
        forest.process(rng.normal(size=20))
        a = forest.arrays_
        assert a is not None
        capacities.append(len(a.vals))
    steps = [(a, b) for a, b in itertools.pairwise(capacities) if b > a]
    assert len(steps) > 3 and all(b <= 1.0625 * a + 64 for a, b in steps), "a sixteenth at a time"
    # a short decay forgets most of the long history: the store shrinks to what is used
    forest.config.time_decay = 100
    for _ in range(20):
        forest.process(rng.normal(size=200))
    a = forest.arrays_
    assert a is not None and len(a.vals) < 0.6 * max(capacities), "well below its peak"
    assert len(a.vals) <= 1.0625 * a.records_in_use() + 64 + 200
    check_invariants(forest)


def test_memory_is_compact() -> None:
    X, _ = np.random.default_rng(0).normal(size=(20_000, 3)), None
    forest = RandomCutForest(RCFConfig(seed=1))
    forest.process(X)
    # the target: at most 1 MB for 100 trees x 256 samples x 3 dimensions (int16/float32
    # nodes, a shared point store, boxes cached for 30% of the nodes)
    assert forest.memory_bytes() <= 1_000_000
    check_invariants(forest)


@pytest.mark.parametrize("shingle", [1, 3])
def test_box_cache_changes_memory_not_scores(shingle: int) -> None:
    rng = np.random.default_rng(7)
    X = np.vstack([rng.normal(size=(1500, 2)).round(1), [[9.0, -9.0]], rng.normal(size=(500, 2))])
    runs = []
    for fraction in (0.0, 0.05, 0.2, 1.0):
        config = RCFConfig(
            number_of_trees=10, sub_sample_size=64, time_decay=400, shingle_size=shingle, seed=3,
            bounding_box_cache_fraction=fraction,
        )  # fmt: skip
        forest = RandomCutForest(config)
        result = forest.process(X, explain=True)
        check_invariants(forest)
        runs.append((result, forest.memory_bytes()))
    for result, _ in runs[1:]:
        np.testing.assert_array_equal(result.scores, runs[0][0].scores)
        np.testing.assert_array_equal(result.high, runs[0][0].high)  # type: ignore[arg-type]
    sizes = [m for _, m in runs]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


# -- batch -------------------------------------------------------------------------------------
def test_batch_fit_score_threshold_and_state(tmp_path: pytest.TempPathFactory) -> None:
    rng = np.random.default_rng(8)
    train = rng.normal(size=(3000, 2))
    forest = BatchRandomCutForest(BatchConfig(feature_dim=2, num_trees=50, seed=4)).fit(train)
    check_invariants(forest)
    points = np.vstack([rng.normal(size=(500, 2)), [[8.0, 8.0]]])
    scores = forest.score(points)
    assert int(np.argmax(scores)) == 500 and scores[500] > forest.threshold()
    assert np.mean(scores[:500] > forest.threshold()) < 0.05
    np.testing.assert_array_equal(scores, forest.score(points)), "scoring does not update"
    hi, lo = forest.attribution(points)
    np.testing.assert_allclose((hi + lo).sum(axis=1), scores, rtol=1e-9)
    path = tmp_path / "batch.npz"  # type: ignore[operator]
    save(forest, path)
    again = load(path)
    assert isinstance(again, BatchRandomCutForest)
    np.testing.assert_array_equal(again.score(points), scores)
    assert again.threshold(k=2) == forest.threshold(k=2)


def test_batch_same_seed_same_forest() -> None:
    train = np.random.default_rng(1).normal(size=(500, 1))
    a = BatchRandomCutForest(BatchConfig(feature_dim=1, num_trees=50, seed=3)).fit(train)
    b = BatchRandomCutForest(BatchConfig(feature_dim=1, num_trees=50, seed=3)).fit(train)
    np.testing.assert_array_equal(a.score(train[:50]), b.score(train[:50]))


def test_batch_errors() -> None:
    with pytest.raises(UsageError, match=r"num_trees must be an integer in 50\.\.1000, got 10"):
        BatchRandomCutForest(BatchConfig(feature_dim=1, num_trees=10))
    with pytest.raises(UsageError, match=r"num_samples_per_tree must be an integer in 1\.\.2048"):
        BatchRandomCutForest(BatchConfig(feature_dim=1, num_samples_per_tree=4096))
    forest = BatchRandomCutForest(BatchConfig(feature_dim=2))
    with pytest.raises(NotFittedError, match="not fitted"):
        forest.score([[1.0, 2.0]])
    with pytest.raises(InputError, match=r"expected rows of feature_dim=2 numbers"):
        forest.fit(np.zeros((10, 3)))


def test_thresholds() -> None:
    assert score_threshold([1.0, 3.0], k=1) == pytest.approx(3.0)
    import pandas as pd

    idx = pd.date_range("2026-01-05", periods=48, freq="1h", tz="UTC")
    scores = np.r_[np.ones(24), np.arange(24.0)]
    daily = daily_thresholds(idx, scores, k=3)
    assert daily.iloc[0] == pytest.approx(1.0)
    assert daily.iloc[1] == pytest.approx(np.mean(np.arange(24.0)) + 3 * np.std(np.arange(24.0)))


def test_index_types_widen_for_big_forests_and_many_dimensions() -> None:
    rng = np.random.default_rng(9)
    small = RandomCutForest(RCFConfig(number_of_trees=20, sub_sample_size=64, seed=1))
    small.process(rng.normal(size=(300, 3)))
    assert small.arrays_ is not None
    assert small.arrays_.lpt.dtype == np.int16
    # 3 dimensions: four cut dimensions a byte; 64 samples: leaf masses minus one in a byte
    assert small.arrays_.cdim.dtype == np.uint8 and small.arrays_.cdim.shape == (20, -(-64 // 4))
    assert small.arrays_.lmass.dtype == np.uint8
    # 130 x 256 samples may need store slots past 32767; 30 columns x shingle 5 = 150 dimensions
    big = RandomCutForest(
        RCFConfig(number_of_trees=130, sub_sample_size=256, shingle_size=5, seed=2)
    )
    X = rng.normal(size=(400, 30))
    X[350] = 8.0
    scores = big.process(X, explain=True).scores
    assert big.arrays_ is not None
    assert big.arrays_.lpt.dtype == np.int32 and big.arrays_.cdim.dtype == np.int16
    # the pipeline's forests: 50 x 256 points of 4 records stay below 65536 records
    pipeline = RandomCutForest(RCFConfig(number_of_trees=50, shingle_size=4, seed=3), dimensions=1)
    assert pipeline.arrays_ is not None and pipeline.arrays_.lpt.dtype == np.uint16
    # the samplers hold leaf slots: a byte up to 256 samples, two above
    assert pipeline.arrays_.spt.dtype == np.uint8 and big.arrays_.spt.dtype == np.uint8
    wide = RandomCutForest(RCFConfig(number_of_trees=2, sub_sample_size=300, seed=3), dimensions=1)
    assert wide.arrays_ is not None and wide.arrays_.spt.dtype == np.int16
    assert wide.arrays_.lmass.dtype == np.int16  # up to 299 + 1 copies
    # 5 dimensions: a byte per cut dimension
    five = RandomCutForest(RCFConfig(number_of_trees=2, sub_sample_size=64, seed=3), dimensions=5)
    assert five.arrays_ is not None and five.arrays_.cdim.dtype == np.int8
    assert five.arrays_.cdim.shape == five.arrays_.left.shape
    assert int(np.argmax(scores)) == 350
    check_invariants(big)
    buf = io.BytesIO()
    save(big, buf)
    buf.seek(0)
    again = load(buf)
    assert isinstance(again, RandomCutForest)
    nxt = rng.normal(size=(5, 30))
    np.testing.assert_array_equal(again.process(nxt).scores, big.process(nxt).scores)


def test_files_with_wide_sampler_slots_load_narrowed_and_continue_the_same() -> None:
    # version 3 files written before the samplers' leaf slots were narrowed hold them as int16
    rng = np.random.default_rng(4)
    forest = RandomCutForest(
        RCFConfig(number_of_trees=8, sub_sample_size=64, shingle_size=2, seed=6)
    )
    forest.process(rng.normal(size=(500, 1)))
    buf = io.BytesIO()
    save(forest, buf)
    buf.seek(0)
    with np.load(buf) as data:
        content = {k: data[k] for k in data.files}
    assert content["forest.spt"].dtype == np.uint8
    content["forest.spt"] = content["forest.spt"].astype(np.int16)
    old = io.BytesIO()
    np.savez_compressed(old, **content)
    old.seek(0)
    again = load(old)
    assert isinstance(again, RandomCutForest) and again.arrays_ is not None
    assert again.arrays_.spt.dtype == np.uint8
    check_invariants(again)
    nxt = rng.normal(size=(300, 1))
    np.testing.assert_array_equal(
        again.process(nxt, explain=True).scores, forest.process(nxt, explain=True).scores
    )
