"""The batch forest (SageMaker RCF semantics) and the mean + k·std threshold of the seed report.

``fit`` draws a uniform sample of ``num_samples_per_tree`` training points for each tree (what a
reservoir sample of the training set gives) and builds the trees; ``score`` then scores any number of
points against the fixed forest, in parallel across points, without updating it, through the
read-only layout of :mod:`rushhour.detect.rcf.frozen` (built once after ``fit`` or ``load``). The
scores are on AWS's scale, as the streaming forest's.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> train = rng.normal(size=(2000, 2))
>>> forest = BatchRandomCutForest(BatchConfig(feature_dim=2, num_trees=50, seed=1)).fit(train)
>>> s = forest.score(np.array([[0.0, 0.0], [6.0, -6.0]]))
>>> bool(s[1] > forest.threshold() > s[0])
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rushhour.detect.rcf import kernels
from rushhour.detect.rcf.forest import ForestArrays, _check_range
from rushhour.detect.rcf.frozen import FrozenForest, freeze
from rushhour.errors import InputError, NotFittedError, UsageError


@dataclass
class BatchConfig:
    """SageMaker's hyperparameters (same names, same ranges)."""

    feature_dim: int
    num_samples_per_tree: int = 256
    num_trees: int = 100
    seed: int | None = None

    def validate(self) -> None:
        _check_range("feature_dim", self.feature_dim, 1, 10_000)
        _check_range("num_samples_per_tree", self.num_samples_per_tree, 1, 2048)
        _check_range("num_trees", self.num_trees, 50, 1000)


@dataclass
class BatchRandomCutForest:
    """Fit once on a training set, then score without updating."""

    config: BatchConfig
    arrays_: ForestArrays | None = None
    training_mean_: float | None = None
    training_std_: float | None = None
    seed_: int = 0
    frozen_: FrozenForest | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.config.validate()
        seed = self.config.seed
        self.seed_ = (
            int(np.random.SeedSequence().entropy % (1 << 62))  # type: ignore[operator]
            if seed is None
            else int(seed)
        )

    def _matrix(self, X: Any, what: str) -> np.ndarray:
        A = np.asarray(X, dtype=np.float64)
        if A.ndim == 1 and self.config.feature_dim == 1:
            A = A.reshape(-1, 1)
        if A.ndim != 2 or A.shape[1] != self.config.feature_dim:
            raise InputError(
                f"{what} has shape {A.shape}",
                expected=f"rows of feature_dim={self.config.feature_dim} numbers",
            )
        if not np.isfinite(A).all():
            raise InputError(f"{what} holds NaN or infinite values", expected="finite numbers")
        return A.astype(np.float32)

    def fit(self, X: Any) -> BatchRandomCutForest:
        """Build every tree from its own uniform sample of ``X``; remember the training scores'
        mean and standard deviation for :meth:`threshold`."""
        A = self._matrix(X, "the training set")
        if len(A) == 0:
            raise InputError("the training set is empty", expected="at least one row")
        c = self.config
        S = c.num_samples_per_tree
        a = ForestArrays.allocate(c.num_trees, S, c.feature_dim, self.seed_)
        rng = np.random.default_rng(self.seed_)
        picks = [rng.choice(len(A), size=min(S, len(A)), replace=False) for _ in range(c.num_trees)]
        used = np.unique(np.concatenate(picks))
        # the point store holds each sampled training row once, shared by the trees
        a.replace_store(A[used], len(used))
        where = np.searchsorted(used, np.arange(len(A)))
        for t, pick in enumerate(picks):
            kernels.insert_points(
                t, where[pick].astype(np.int64), a.meta, a.pts, a.root, a.left, a.right,
                a.cdim, a.cval, a.nmass, a.bmin, a.bmax, a.lpt, a.lmass, a.ihead, a.lhead, a.rng,
                a.spt,
            )  # fmt: skip
            a.sn[t] = len(pick)
        self.arrays_ = a
        self.frozen_ = None
        train_scores = self._score_rows(A)
        self.training_mean_ = float(train_scores.mean())
        self.training_std_ = float(train_scores.std())
        return self

    def _fitted(self) -> ForestArrays:
        if self.arrays_ is None:
            raise NotFittedError("the batch forest is not fitted", hint="call fit(training_set)")
        return self.arrays_

    def score(self, X: Any) -> np.ndarray:
        """Anomaly scores of the rows of ``X`` (the forest does not change)."""
        return self._score_rows(self._matrix(X, "the points"))

    def _score_rows(self, Q: np.ndarray) -> np.ndarray:
        """:meth:`score` of rows already checked (float32, ``feature_dim`` wide)."""
        if self.frozen_ is None:
            self.frozen_ = freeze(self._fitted())
        return self.frozen_.score(Q)

    def attribution(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension (high, low) attributions; ``high + low`` sums to :meth:`score` per row.

        The streaming kernel's attribution sums to its float64 score, which the batch score (a
        float32 climb) matches to relative 1e-6; the attributions are rescaled by that ratio."""
        a = self._fitted()
        Q = self._matrix(X, "the points")
        hi, lo = (np.asarray(v) for v in kernels.attribute_many(Q, *a.tree()))
        total = (hi + lo).sum(axis=1)
        ratio = np.divide(self._score_rows(Q), total, out=np.ones_like(total), where=total > 0)
        return hi * ratio[:, None], lo * ratio[:, None]

    def threshold(self, k: float = 3.0) -> float:
        """``mean + k·std`` of the training scores, as the seed's SageMaker job used."""
        if self.training_mean_ is None or self.training_std_ is None:
            raise NotFittedError("the batch forest is not fitted", hint="call fit(training_set)")
        return score_threshold_from(self.training_mean_, self.training_std_, k)

    def memory_bytes(self) -> int:
        """The forest's arrays and, once scored, its read-only scoring layout."""
        frozen = 0 if self.frozen_ is None else self.frozen_.nbytes()
        return frozen + (0 if self.arrays_ is None else self.arrays_.nbytes(in_use=False))


def score_threshold_from(mean: float, std: float, k: float) -> float:
    if k < 0:
        raise UsageError(f"k must be >= 0, got {k}")
    return mean + k * std


def score_threshold(scores: Any, k: float = 3.0) -> float:
    """``mean + k·std`` of ``scores``.

    >>> score_threshold([1.0, 1.0, 1.0, 1.0, 2.0], k=2)
    2.0
    """
    s = np.asarray(scores, dtype=float)
    if len(s) == 0:
        raise InputError("no scores to compute a threshold from", expected="at least one score")
    return score_threshold_from(float(s.mean()), float(s.std()), k)


def daily_thresholds(index: pd.DatetimeIndex, scores: Any, k: float = 3.0) -> pd.Series:
    """The threshold recomputed per (UTC) day from that day's scores, as the seed report did.

    >>> idx = pd.date_range("2026-01-05", periods=4, freq="12h", tz="UTC")
    >>> daily_thresholds(idx, [1.0, 3.0, 2.0, 2.0], k=1).tolist()
    [3.0, 2.0]
    """
    s = pd.Series(np.asarray(scores, dtype=float), index=index)
    if len(s) == 0:
        raise InputError("no scores to compute thresholds from", expected="at least one score")
    grouped = s.groupby(s.index.floor("D"))
    return grouped.mean() + k * grouped.std(ddof=0)
