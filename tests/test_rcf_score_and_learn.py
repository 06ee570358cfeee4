"""The live pipeline's one-pass path gives exactly what score_one then learn_one give."""

from datetime import UTC, datetime

import numpy as np
import pytest

from rushhour.detect.rcf.detector import RCFDetector
from rushhour.detect.rcf.forest import RCFConfig

T = datetime(2026, 1, 5, tzinfo=UTC)


def test_score_and_learn_equals_score_one_then_learn_one() -> None:
    config = RCFConfig(number_of_trees=20, sub_sample_size=32, shingle_size=4, seed=3)
    a, b = RCFDetector(config), RCFDetector(config)
    x = np.random.default_rng(0).poisson(500, size=300).astype(float)
    x[250] = 2500.0
    for value in x.tolist():
        one = a.score_one(T, value)
        a.learn_one(T, value)
        both = b.score_and_learn(T, value)
        assert (both.score, both.anomalous, both.direction) == (
            one.score,
            one.anomalous,
            one.direction,
        )
    # the two paths sum the trees' scores in another order: equal to the last bits
    assert a.n_ == b.n_
    assert b.mean_ == pytest.approx(a.mean_, rel=1e-12) and b.m2_ == pytest.approx(a.m2_, rel=1e-12)
