"""A default detector's snapshot round trip, shared by the tests of the stages it carries."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from rushhour.detect.default import DefaultDetector, Detections, DetectorConfig


def assert_snapshot_round_trip(
    idx: pd.DatetimeIndex, x: np.ndarray, cut: int, config: DetectorConfig | None = None
) -> tuple[dict[str, Any], Detections]:
    """Run a detector over the first ``cut`` buckets, restore another from its snapshot (through
    strict JSON, as the store keeps it) and check that both continue over the rest with the same
    scores, alerts and anomalies. Returns the snapshot (for the caller to age into older layouts)
    and the restored detector's result over the rest."""
    det = DefaultDetector(config or DetectorConfig())
    det.run(idx[:cut], x[:cut])
    state: dict[str, Any] = json.loads(json.dumps(det.snapshot(), allow_nan=False))
    again = DefaultDetector.restore(state).run(idx[cut:], x[cut:])
    want = det.run(idx[cut:], x[cut:])
    np.testing.assert_array_equal(again.score, want.score)
    np.testing.assert_array_equal(again.alert, want.alert)
    np.testing.assert_array_equal(again.anomalous, want.anomalous)
    return state, again
