"""The read-only batch layout scores as the streaming kernels do (to the last bits), on any forest
shape."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rushhour.detect.rcf import RandomCutForest, RCFConfig, kernels
from rushhour.detect.rcf.frozen import BLOCK, freeze


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
    np.testing.assert_allclose(frozen.score(Q), _reference(forest, Q), rtol=1e-12, atol=0)


def test_frozen_scores_many_blocks_and_leaves_the_forest_unchanged() -> None:
    rng = np.random.default_rng(2)
    forest = RandomCutForest(
        RCFConfig(number_of_trees=30, sub_sample_size=64, shingle_size=4, seed=5)
    )
    forest.update(rng.normal(size=2000).round(1))
    assert forest.arrays_ is not None and forest.shingler_ is not None
    before = {k: v.copy() for k, v in forest.arrays_.as_dict().items()}
    Q, _ = forest.shingler_.copy().push(rng.normal(size=(3 * BLOCK + 17, 1)) * 3)
    frozen = freeze(forest.arrays_)
    scores = frozen.score(Q)
    np.testing.assert_allclose(scores, _reference(forest, Q), rtol=1e-12, atol=0)
    assert np.all(scores > 0)
    for k, v in forest.arrays_.as_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert frozen.nbytes() > 0 and frozen.max_depth >= 1
