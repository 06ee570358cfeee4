"""The live pipeline's forests: configured from ``[detect]``, and their memory settles (issue 6)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from rushhour.errors import ConfigError
from rushhour.pipeline.detectors import DetectorBank
from rushhour.series.generate import generate_traffic
from rushhour.settings import load_settings

# 10,000 series in 4 GB: the interpreter (about 0.27 GB) and every series' band, default detector
# and runtime state (about 57 kB) leave about 316 kB for the arrays of each forest
FOREST_BUDGET = 316_000


def bank(**detect: object) -> DetectorBank:
    return DetectorBank(load_settings(environ={}, overrides={"detect": {"rcf": True, **detect}}))


def test_forests_take_their_time_decay_from_the_settings() -> None:
    assert bank().forest("a").config.time_decay == 5_040  # type: ignore[union-attr]
    assert bank(rcf_time_decay=20_000).forest("a").config.time_decay == 20_000  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="rcf_time_decay"):
        bank(rcf_time_decay=256)  # not above rcf_samples


def test_a_pipeline_forest_settles_within_its_share_of_4_gb() -> None:
    values = generate_traffic(datetime(2026, 3, 2, tzinfo=UTC), days=28, seed=5).series
    x = values.to_numpy(dtype=float)
    det = bank().forest("svc")
    assert det is not None
    sizes = []
    for lo in range(0, len(x), 10_080):  # a week at a time
        det.forest.process(x[lo : lo + 10_080].reshape(-1, 1))
        sizes.append(det.forest.memory_bytes(in_use=False))
    assert max(sizes) <= FOREST_BUDGET
    # after the first weeks the store holds what half a week's decay samples: it stops growing
    assert sizes[-1] <= 1.05 * sizes[1]
    a = det.forest.arrays_
    assert a is not None and a.spt.dtype == np.uint8  # 256 leaf slots fit a byte
