"""Agreement with AWS's own implementation (randomcutforest-core 4.3.0 via the ``jrcf`` package).

Both forests see the same 20,000-bucket synthetic traffic streams; scores must agree in level
(mean and p99 over normal buckets within 10%), in ranking (Spearman >= 0.8) and at the top (the same
ten most anomalous episodes, up to two of them). Skipped, with the reason, where jrcf or
Java 17 is not available.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from rushhour.detect.rcf import RandomCutForest, RCFConfig
from rushhour.testing import traffic_stream

SAMPLES = 256
WARM = SAMPLES
RADIUS = 60  # buckets: one hour of one-minute traffic


def _jrcf():  # type: ignore[no-untyped-def]
    try:
        from jrcf.rcf import RandomCutForestModel
    except Exception as exc:  # ImportError, or the JVM failing to start without Java 17
        pytest.skip(f"AWS's reference (jrcf + Java 17) is not available: {exc}")
    return RandomCutForestModel


@cache
def _scores(columns: int, shingle: int, trees: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model_cls = _jrcf()
    X, normal = traffic_stream(columns)
    ours = RandomCutForest(
        RCFConfig(number_of_trees=trees, sub_sample_size=SAMPLES, shingle_size=shingle, seed=11)
    ).process(X)
    aws = model_cls(
        dimensions=columns,
        shingle_size=shingle,
        num_trees=trees,
        sample_size=SAMPLES,
        lam=1.0 / 100_000,
        random_seed=11,
    )
    theirs = np.zeros(len(X))
    for i, x in enumerate(X):
        theirs[i] = aws.score(x)
        aws.update(x)
    theirs[:WARM] = 0.0  # Kinesis's warm-up, which rushhour follows
    return ours.scores, theirs, normal


CASES = [
    pytest.param(3, 1, 100, id="3-columns-shingle-1-100-trees"),
    pytest.param(1, 8, 50, id="1-column-shingle-8-50-trees"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("columns", "shingle", "trees"), CASES)
def test_level_agrees_on_normal_points(columns: int, shingle: int, trees: int) -> None:
    ours, theirs, normal = _scores(columns, shingle, trees)
    keep = normal.copy()
    keep[:WARM] = False
    assert ours[keep].mean() == pytest.approx(theirs[keep].mean(), rel=0.10)
    assert np.percentile(ours[keep], 99) == pytest.approx(np.percentile(theirs[keep], 99), rel=0.10)
    # the scale the issue states for traffic: normal points about 0.7 on average
    assert 0.5 < ours[keep].mean() < 0.9


@pytest.mark.slow
@pytest.mark.parametrize(("columns", "shingle", "trees"), CASES)
def test_ranking_agrees(columns: int, shingle: int, trees: int) -> None:
    from scipy.stats import spearmanr

    ours, theirs, _ = _scores(columns, shingle, trees)
    rho = spearmanr(ours[WARM:], theirs[WARM:]).statistic
    assert rho >= 0.8


def _top_episodes(scores: np.ndarray, k: int = 10, radius: int = RADIUS) -> list[int]:
    """The ``k`` highest scores at least ``radius`` buckets apart (one per anomalous episode)."""
    taken: list[int] = []
    for p in np.argsort(-scores, kind="stable"):
        if all(abs(int(p) - q) > radius for q in taken):
            taken.append(int(p))
            if len(taken) == k:
                break
    return taken


@pytest.mark.slow
@pytest.mark.parametrize(("columns", "shingle", "trees"), CASES)
def test_same_top_ten(columns: int, shingle: int, trees: int) -> None:
    # "the same top ten, up to 2 positions": at least 8 of our ten most anomalous episodes are among
    # AWS's ten. Episodes, not raw buckets: within one anomaly window dozens of buckets score almost
    # alike and their order is noise (two AWS forests with different seeds share only 2 of their
    # top-10 *buckets* on the shingle-8 stream, but 9 of their top-10 episodes).
    ours, theirs, _ = _scores(columns, shingle, trees)
    mine, aws = _top_episodes(ours), _top_episodes(theirs)
    shared = sum(any(abs(p - q) <= RADIUS for q in aws) for p in mine)
    assert shared >= 8, f"ours {mine} vs AWS {aws}"
