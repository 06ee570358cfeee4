"""rushhour's own Random Cut Forest: AWS randomcutforest-core semantics in NumPy + Numba.

* :class:`RandomCutForest` — the streaming forest (Kinesis RANDOM_CUT_FOREST: score, then update);
* :class:`BatchRandomCutForest` — fit once, score many (SageMaker RCF), with :func:`score_threshold`
  and :func:`daily_thresholds`;
* :func:`random_cut_forest_with_explanation` — the Kinesis operator over named-column records;
* :class:`RCFDetector` — a per-series :class:`~rushhour.detect.base.StreamingDetector`;
* :func:`save` / :func:`load` — versioned npz + JSON header state.
"""

from rushhour.detect.rcf.batch import (
    BatchConfig,
    BatchRandomCutForest,
    daily_thresholds,
    score_threshold,
)
from rushhour.detect.rcf.detector import RCFDetector
from rushhour.detect.rcf.forest import RandomCutForest, RCFConfig, RCFResult
from rushhour.detect.rcf.kinesis import random_cut_forest_with_explanation
from rushhour.detect.rcf.state import load, save

__all__ = [
    "BatchConfig",
    "BatchRandomCutForest",
    "RCFConfig",
    "RCFDetector",
    "RCFResult",
    "RandomCutForest",
    "daily_thresholds",
    "load",
    "random_cut_forest_with_explanation",
    "save",
    "score_threshold",
]
