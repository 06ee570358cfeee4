"""The read-only batch layout scores as the streaming kernels do (to float32 rounding: relative
1e-6), on any forest shape, and a batch forest agrees with AWS's forest fitted on the same points."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from rushhour.detect.rcf import RandomCutForest, RCFConfig, kernels
from rushhour.detect.rcf.batch import BatchConfig, BatchRandomCutForest
from rushhour.detect.rcf.frozen import BLOCK, freeze
from rushhour.testing import traffic_stream
from tests.test_rcf_aws import RADIUS, _jrcf, _top_episodes

# the frozen kernel climbs in float32 (distances, probability, the tree's score) where the streaming
# one sums in float64: a few float32 roundings per tree, far inside the agreement with AWS below
RTOL = 1e-6


def _reference(forest: RandomCutForest, Q: np.ndarray) -> np.ndarray:
    assert forest.arrays_ is not None
    return np.asarray(kernels.score_rows(Q, *forest.arrays_.tree()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.integers(-4, 4).map(float), min_size=1, max_size=120),
    seed=st.integers(0, 2**31),
    shingle=st.integers(1, 3),
)
def test_frozen_scores_equal_the_streaming_kernels(
    values: list[float], seed: int, shingle: int
) -> None:
    # few distinct values: duplicates, single-leaf trees and (early on) empty trees all occur
    forest = RandomCutForest(
        RCFConfig(
            number_of_trees=6, sub_sample_size=10, time_decay=40, shingle_size=shingle, seed=seed
        )
    )
    forest.update(np.array(values))
    assert forest.shingler_ is not None
    grid = np.arange(-5.0, 5.5, 0.5)
    Q, _ = forest.shingler_.copy().push(grid.reshape(-1, 1))
    frozen = freeze(forest.arrays_)  # type: ignore[arg-type]
    np.testing.assert_allclose(frozen.score(Q), _reference(forest, Q), rtol=RTOL, atol=0)


def test_frozen_scores_many_blocks_and_leaves_the_forest_unchanged() -> None:
    rng = np.random.default_rng(2)
    forest = RandomCutForest(
        RCFConfig(number_of_trees=30, sub_sample_size=64, shingle_size=4, seed=5)
    )
    forest.update(rng.normal(size=2000).round(1))
    assert forest.arrays_ is not None and forest.shingler_ is not None
    before = {k: v.copy() for k, v in forest.arrays_.as_dict().items()}
    # 4 dimensions: a block holds BLOCK // 4 points, so this is 3 blocks on one thread, 4 on two
    Q, _ = forest.shingler_.copy().push(rng.normal(size=(2 * BLOCK // 4 + 17, 1)) * 3)
    frozen = freeze(forest.arrays_)
    scores = frozen.score(Q)
    np.testing.assert_allclose(scores, _reference(forest, Q), rtol=RTOL, atol=0)
    assert np.all(scores > 0)
    threads = numba.get_num_threads()
    try:  # the work is split the same way on any number of threads: the same sums, bit for bit
        numba.set_num_threads(1)
        np.testing.assert_array_equal(frozen.score(Q), scores)
    finally:
        numba.set_num_threads(threads)
    for k, v in forest.arrays_.as_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert frozen.nbytes() > 0 and frozen.max_depth >= 1


@pytest.mark.slow
def test_batch_scores_agree_with_aws_on_the_same_training_points() -> None:
    # SageMaker's use: fit on a training set, score every point without updating. Both forests get
    # the same shingled points (8 consecutive buckets of one column), trained on the first half.
    model_cls = _jrcf()
    X, normal = traffic_stream(1)
    shingle, trees, half = 8, 50, len(X) // 2
    rows = np.lib.stride_tricks.sliding_window_view(X[:, 0], shingle).astype(np.float32)
    normal = normal[shingle - 1 :]
    ours = (
        BatchRandomCutForest(BatchConfig(feature_dim=shingle, num_trees=trees, seed=11))
        .fit(rows[:half])
        .score(rows)
    )
    aws = model_cls(
        dimensions=shingle, shingle_size=1, num_trees=trees, sample_size=256, lam=1.0 / 100_000,
        random_seed=11,
    )  # fmt: skip
    for x in rows[:half]:
        aws.update(x.tolist())
    theirs = np.array([aws.score(x.tolist()) for x in rows])
    later = np.arange(len(rows)) >= half
    keep = normal & later
    assert ours[keep].mean() == pytest.approx(theirs[keep].mean(), rel=0.10)
    assert np.percentile(ours[keep], 99) == pytest.approx(np.percentile(theirs[keep], 99), rel=0.10)
    assert spearmanr(ours, theirs).statistic >= 0.8
    mine, top = _top_episodes(ours), _top_episodes(theirs)
    assert sum(any(abs(p - q) <= RADIUS for q in top) for p in mine) >= 8, f"{mine} vs {top}"
