"""Per-series detector sets, with a cold-start policy for series that have no trained model yet.

A series with a trained Mean Predictor (model ``mean_predictor/<series key>``) is scored against its own
band. A series without one is scored against the *fleet baseline*: the rhythm learned from the sum of
all trained series (model ``mean_predictor/__fleet__``), scaled to the series' own recent level. Such
verdicts say ``confidence: low`` in their explanation. Without any trained model yet, buckets are not
scored (score 0) until ``rushhour train`` or the scheduled retraining has run.

Models are swapped in whole (:meth:`DetectorBank.swap`) between batches: scoring never sees a
half-loaded set.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from rushhour.detect.base import Verdict
from rushhour.detect.mean_band import MeanBandDetector
from rushhour.detect.rcf.detector import RCFDetector
from rushhour.detect.rcf.forest import RCFConfig
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.settings import Settings
from rushhour.store.db import Store

FLEET = "__fleet__"
MODEL_PREFIX = "mean_predictor/"
LEVEL_WINDOW = 60
RCF_HISTORY = 1024  # stored buckets replayed into each forest at start
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the forest ignores time; the detector API takes one


def model_name(series_key: str) -> str:
    return MODEL_PREFIX + series_key


@dataclass
class ModelSet:
    """The trained models in force: one band per series, plus the fleet profile."""

    bands: dict[str, MeanBandDetector] = field(default_factory=dict)
    fleet: MeanPredictor | None = None
    versions: dict[str, int] = field(default_factory=dict)


class DetectorBank:
    """Scores closed buckets of many series."""

    name = "mean_band"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.models = ModelSet()
        self._levels: dict[str, deque[float]] = {}
        # streaming forests, one per series: they learn every closed bucket, so they are state,
        # rebuilt at start from the newest stored buckets (see Processor.restore)
        self.forests: dict[str, RCFDetector] = {}

    def forest(self, key: str) -> RCFDetector | None:
        """The series' Random Cut Forest (created on first use), or None when ``detect.rcf`` is off."""
        if not self.s.detect.rcf:
            return None
        det = self.forests.get(key)
        if det is None:
            d = self.s.detect
            seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")
            config = RCFConfig(
                number_of_trees=d.rcf_trees,
                sub_sample_size=d.rcf_samples,
                shingle_size=d.rcf_shingle,
                seed=seed,
                bounding_box_cache_fraction=d.rcf_box_cache,
            )
            det = self.forests[key] = RCFDetector(config)
        return det

    def warm_up(self, history: dict[str, list[float]]) -> None:
        """Rebuild every forest from its series' newest stored buckets, oldest first."""
        self.forests.clear()
        for key, values in history.items():
            det = self.forest(key)
            if det is None:
                return
            for x in values:
                det.learn_one(_EPOCH, x)

    def rcf_score(self, key: str, value: float) -> Verdict | None:
        """Score a closed bucket with the series' forest, then learn it."""
        det = self.forest(key)
        if det is None:
            return None
        return det.score_and_learn(_EPOCH, value)

    def load(self, store: Store) -> ModelSet:
        """Build a model set from the newest stored version of every Mean Predictor."""
        models = ModelSet()
        names = {m["name"] for m in store.list_models() if m["name"].startswith(MODEL_PREFIX)}
        for name in sorted(names):
            row = store.load_model(name)
            if row is None or row["artifact"] is None:
                continue
            predictor = MeanPredictor.restore(json.loads(bytes(row["artifact"]).decode()))
            key = name.removeprefix(MODEL_PREFIX)
            models.versions[key] = int(row["version"])
            if key == FLEET:
                models.fleet = predictor
            else:
                models.bands[key] = self._band(predictor)
        return models

    def swap(self, models: ModelSet) -> None:
        """Hot swap: the next batch is scored with ``models``."""
        self.models = models

    def _band(self, predictor: MeanPredictor) -> MeanBandDetector:
        d = self.s.detect
        return MeanBandDetector(predictor, k=d.k, min_relative_deviation=d.min_relative_deviation)

    def score(
        self, key: str, starts: list[int], values: list[float], models: ModelSet | None = None
    ) -> list[Verdict]:
        """Verdicts for consecutive closed buckets of one series (with ``models``, or those in force)."""
        models = models or self.models
        index = pd.DatetimeIndex(pd.to_datetime(starts, unit="s", utc=True))
        x = np.asarray(values, dtype=float)
        band = models.bands.get(key)
        if band is not None:
            return band.score_many(index, x)
        if models.fleet is None:
            return [Verdict(score=0.0, anomalous=False, explanation={"confidence": "none"})] * len(
                starts
            )
        return self._cold(key, index, x, models.fleet)

    def score_closed(
        self,
        keys: list[str],
        starts: np.ndarray,
        values: np.ndarray,
        models: ModelSet | None = None,
    ) -> list[Verdict]:
        """Verdicts for closed buckets of many series at once.

        Series share bucket starts, so timestamp keys are computed once per distinct start and each
        series' band is a table lookup; the decision is one vectorised pass.
        """
        models = models or self.models
        n = len(keys)
        uniq, inv = np.unique(starts, return_inverse=True)
        index = pd.DatetimeIndex(pd.to_datetime(uniq, unit="s", utc=True))
        mean = np.full(n, np.nan)
        dev = np.full(n, np.nan)
        banded: dict[str, list[int]] = {}
        cold: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            (banded if key in models.bands else cold).setdefault(key, []).append(i)
        codes: dict[tuple[object, ...], np.ndarray] = {}
        rule: MeanBandDetector | None = None
        for key, positions in banded.items():
            band = models.bands[key]
            rule = rule or band
            sig = band.predictor.signature()
            if sig not in codes:
                codes[sig] = band.predictor.codes(index)
            pos = np.asarray(positions)
            mean[pos], dev[pos] = band.predictor.lookup(codes[sig][inv[pos]])
        out: list[Verdict] = [Verdict(score=0.0, anomalous=False)] * n
        if rule is not None:
            pos = np.asarray([i for p in banded.values() for i in p])
            for i, v in zip(
                pos.tolist(), rule.verdicts(values[pos], mean[pos], dev[pos]), strict=True
            ):
                out[i] = v
        for key, positions in cold.items():
            vs = self.score(
                key,
                [int(starts[i]) for i in positions],
                [float(values[i]) for i in positions],
                models,
            )
            for i, v in zip(positions, vs, strict=True):
                out[i] = v
        return out

    def _cold(
        self, key: str, index: pd.DatetimeIndex, x: np.ndarray, fleet: MeanPredictor
    ) -> list[Verdict]:
        """Fleet rhythm x this series' recent level; the level learns from each bucket it scores."""
        shape, _ = fleet.expected(index)
        levels = self._levels.setdefault(key, deque(maxlen=LEVEL_WINDOW))
        out = []
        band = self._band(fleet)
        for value, profile in zip(x.tolist(), shape.tolist(), strict=True):
            if not levels or not np.isfinite(profile) or profile <= 0:
                out.append(Verdict(score=0.0, anomalous=False, explanation={"confidence": "none"}))
            else:
                expected = float(np.median(levels)) * profile
                deviation = max(0.1 * expected, float(np.sqrt(max(expected, 1.0))))
                v = band._verdict(
                    value, expected, deviation
                )  # the same decision rule as trained bands
                out.append(replace(v, explanation={"confidence": "low", "baseline": "fleet"}))
            if np.isfinite(profile) and profile > 0:
                levels.append(value / profile)
        return out
