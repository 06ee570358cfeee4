"""Per-series detector sets, with a cold-start policy for series that have no trained model yet.

A series with a trained Mean Predictor (model ``mean_predictor/<series key>``) is scored against its own
band. A series without one is scored against the *fleet baseline*: the rhythm learned from the sum of
all trained series (model ``mean_predictor/__fleet__``), scaled to the series' own recent level. Such
verdicts say ``confidence: low`` in their explanation. Without any trained model yet, buckets are not
scored (score 0) until ``rushhour train`` or the scheduled retraining has run.

Models are swapped in whole (:meth:`DetectorBank.swap`) between batches: scoring never sees a
half-loaded set.

Beside the band, each series has two online detectors that learn every closed bucket: a Random Cut
Forest (``detect.rcf``) and the default detector (:mod:`rushhour.detect.default`, ``detect.default``),
whose per-bucket flag decides alerts by default (``detect.alert_by = "default"``; ``"mean_band"`` lets
the band decide), once it has warmed up: until then the band (or the fleet baseline) decides. Being state, both are rebuilt at start from stored buckets (see
:mod:`rushhour.pipeline.warmup`).
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from rushhour.detect.band_set import BandSet
from rushhour.detect.base import Verdict
from rushhour.detect.default import DefaultFleet, Detections, DetectorConfig
from rushhour.detect.mean_band import MeanBandDetector
from rushhour.detect.rcf.detector import RCFDetector
from rushhour.detect.rcf.fleet import ForestTable
from rushhour.detect.rcf.forest import RCFConfig
from rushhour.errors import ConfigError, UsageError
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.settings import Settings
from rushhour.store.db import Store

FLEET = "__fleet__"
DEFAULT = "default"  # the default detector's name in scores and anomalies
MODEL_PREFIX = "mean_predictor/"
LEVEL_WINDOW = 60
RCF_HISTORY = 1024  # stored buckets replayed into each forest at start
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the forest ignores time; the detector API takes one


def model_name(series_key: str) -> str:
    return MODEL_PREFIX + series_key


@dataclass
class ModelSet:
    """The trained models in force: one band per series, plus the fleet profile."""

    bands: BandSet = field(default_factory=BandSet)  # compact: shared arrays, not one object each
    fleet: MeanPredictor | None = None
    versions: dict[str, int] = field(default_factory=dict)


class DetectorBank:
    """Scores closed buckets of many series."""

    name = "mean_band"
    #: whether this process has readied the default detectors' kernels (:meth:`prime`)
    defaults_primed: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.models = ModelSet()
        self._levels: dict[str, deque[float]] = {}
        # streaming forests, one per series: they learn every closed bucket, so they are state,
        # rebuilt at start from the newest stored buckets (see Processor.restore)
        self.forests: dict[str, RCFDetector] = {}
        # the forests' arrays for scoring many in one call, and the buckets scored but not learned
        # yet (see rcf_scores and learn_pending)
        self._table = ForestTable()
        self._pending: list[tuple[RCFDetector, float, float]] = []
        # buckets judged before they closed (score_ahead): series -> (forest, its records then,
        # value, verdict); used when the bucket closes with that value and the forest unchanged
        self._ahead: dict[str, tuple[RCFDetector, int, float, Verdict]] = {}
        self.ahead_used = 0  # closed buckets whose forest verdict came from score_ahead
        self.workers = settings.pipeline.workers
        # the default detector of each series: online, so state too (snapshots + replay at start);
        # every series' state is a row of one fleet, stepped a batch at a time
        self.default_config = default_config(settings) if settings.detect.default else None
        self.fleet: DefaultFleet | None = None
        self._rows_of: dict[str, int] = {}
        self.reset_defaults()

    @property
    def decider(self) -> str:
        """The detector whose decision alerts: ``default`` or the band's name."""
        if self.default_config is not None and self.s.detect.alert_by == DEFAULT:
            return DEFAULT
        return self.name

    def reset_defaults(self) -> None:
        """Forget every series' default detector."""
        self._rows_of = {}
        self.fleet = (
            None
            if self.default_config is None
            else DefaultFleet(self.default_config, bucket_seconds=self.s.bucket_width())
        )

    def restore_default(self, key: str, state: dict[str, Any]) -> None:
        """The series' default detector from a snapshot (:meth:`DefaultDetector.snapshot`)."""
        if self.fleet is not None:
            self.fleet.restore(int(self.default_rows([key])[0]), state)

    def default_snapshot(self, key: str) -> dict[str, Any] | None:
        """The series' default detector state, or None when it has none."""
        row = self._rows_of.get(key)
        return None if row is None or self.fleet is None else self.fleet.snapshot(row)

    def default_rows(self, keys: list[str]) -> np.ndarray:
        """The fleet rows of these series, new ones added (in one step)."""
        assert self.fleet is not None
        rows = self._rows_of
        new = list(dict.fromkeys(k for k in keys if k not in rows))
        if new:
            rows.update(zip(new, self.fleet.add(len(new)).tolist(), strict=True))
        return np.fromiter((rows[k] for k in keys), dtype=np.int64, count=len(keys))

    def default_run(self, rows: np.ndarray, starts: np.ndarray, values: np.ndarray) -> Detections:
        """Score then learn buckets (epoch-second ``starts``) with the default detectors of fleet
        ``rows`` (:meth:`default_rows`), all in one step; each series' buckets in time order."""
        assert self.fleet is not None
        ns = np.asarray(starts, dtype=np.int64) * 1_000_000_000
        return self.fleet.run(rows, ns, values)

    def default_scores(
        self, keys: list[str], starts: np.ndarray, values: np.ndarray
    ) -> tuple[list[Verdict], np.ndarray] | None:
        """Score then learn closed buckets with each series' default detector: the verdicts, and
        whether each series' detector was past its warm-up (None when the detector is off).

        All series in one step of the fleet: a batch may hold several buckets of a series (taken
        in time order) and none of others."""
        if self.fleet is None:
            return None
        rows = self.default_rows(keys)
        order = np.lexsort((np.asarray(starts), rows))
        x = np.asarray(values, dtype=float)[order]
        res = self.default_run(rows[order], np.asarray(starts)[order], x)
        out: list[Verdict] = [_QUIET] * len(keys)
        for i, v in zip(order.tolist(), default_verdicts(res, x), strict=True):
            out[i] = v
        warm = np.empty(len(keys), dtype=bool)
        warm[order] = res.warm
        return out, warm

    def forest(self, key: str) -> RCFDetector | None:
        """The series' Random Cut Forest (created on first use), or None when ``detect.rcf`` is off."""
        if not self.s.detect.rcf:
            return None
        det = self.forests.get(key)
        if det is None:
            det = self.forests[key] = RCFDetector(self._config(key))
        return det

    def _config(self, key: str) -> RCFConfig:
        """The forest configuration of a series (its seed from its key)."""
        d = self.s.detect
        seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")
        return RCFConfig(
            number_of_trees=d.rcf_trees,
            sub_sample_size=d.rcf_samples,
            shingle_size=d.rcf_shingle,
            time_decay=d.rcf_time_decay,
            seed=seed,
            bounding_box_cache_fraction=d.rcf_box_cache,
        )

    def rcf_score(self, key: str, value: float) -> Verdict | None:
        """Score a closed bucket with the series' forest, then learn it."""
        det = self.forest(key)
        if det is None:
            return None
        return det.score_and_learn(_EPOCH, value)

    def rcf_scores(self, keys: list[str], values: np.ndarray) -> list[Verdict | None]:
        """Score closed buckets (in batch order; a series may have several, in time order) with
        each series' forest, all series in one compiled call per round, forests spread over
        ``pipeline.workers`` threads: the verdicts :meth:`rcf_score` gives bucket by bucket.

        A series' buckets before its last in the batch are learned before its next is scored; its
        last is only *pending* (:meth:`learn_pending`), so that the batch can be committed before
        the forests learn. Pending buckets are learned first if any are left."""
        if not self.s.detect.rcf:
            return [None] * len(keys)
        self.learn_pending()
        out: list[Verdict | None] = [None] * len(keys)
        rounds: list[list[int]] = []
        seen: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, key in enumerate(keys):
            r = seen.get(key, 0)
            seen[key] = r + 1
            last[key] = i
            if r == len(rounds):
                rounds.append([])
            rounds[r].append(i)
        x = np.asarray(values, dtype=float).tolist()
        for members in rounds:
            dets = [self._forest(keys[i]) for i in members]
            warm = [j for j, det in enumerate(dets) if det.forest.is_warm]
            judged = self._judge_many(
                [dets[j] for j in warm],
                [x[members[j]] for j in warm],
                [keys[members[j]] for j in warm],
            )
            if judged is None:  # forests of mixed configurations: one at a time
                for i in members:
                    out[i] = self._forest(keys[i]).score_and_learn(_EPOCH, x[i])
                continue
            for j, judgement in zip(warm, judged, strict=True):
                out[members[j]] = judgement
            for i, det in zip(members, dets, strict=True):
                scored = out[i]
                if scored is None:  # not warm yet: learn only (score 0), as score_and_learn
                    out[i] = det.score_and_learn(_EPOCH, x[i])
                elif last[keys[i]] == i:
                    self._pending.append((det, x[i], scored.score))
                else:
                    det.learn_scored(x[i], scored.score)
        return out

    def _judge_many(
        self, dets: list[RCFDetector], x: list[float], keys: list[str] | None = None
    ) -> list[Verdict] | None:
        """Verdicts of distinct warm forests on one record each, without learning them; the
        series' (``keys``) buckets judged ahead with the same value and forest are not judged
        again."""
        if not dets:
            return []
        out = [
            self._take_ahead(keys[j], det, x[j]) if keys is not None else None
            for j, det in enumerate(dets)
        ]
        todo = [j for j, got in enumerate(out) if got is None]
        scored = self._attribute([dets[j] for j in todo], [x[j] for j in todo])
        if scored is None:
            return None
        for j, (score, high, low) in zip(todo, scored, strict=True):
            out[j] = dets[j].judge(score, high, low)
        self.ahead_used += len(dets) - len(todo)
        return [v for v in out if v is not None]

    def _attribute(
        self, dets: list[RCFDetector], x: list[float]
    ) -> list[tuple[float, np.ndarray, np.ndarray]] | None:
        """(score, high, low) of distinct warm forests on one record each, in one compiled call;
        None when the forests are of mixed configurations."""
        if not dets:
            return []
        slots = self._table.slots([det.forest for det in dets])
        if slots is None:
            return None
        queries = np.stack([det.query(v) for det, v in zip(dets, x, strict=True)])
        scores, hi, lo = self._table.attribute(queries, slots, self.workers)
        first = dets[0].forest
        high, low = first._fold(hi), first._fold(lo)
        return [(s, high[j], low[j]) for j, s in enumerate(scores.tolist())]

    def _take_ahead(self, key: str, det: RCFDetector, x: float) -> Verdict | None:
        got = self._ahead.pop(key, None)
        # None for another value (a late record), or when the forest learned since
        return got[3] if got is not None and _still_fresh(got, det, x) else None

    def score_ahead(self, keys: list[str], values: np.ndarray) -> int:
        """Score, attribute and judge each series' next bucket to close at its value so far,
        before it closes, once its forest has learned everything before it (pending buckets are
        learned first). When the bucket closes with that value and the forest has learned nothing
        since, :meth:`rcf_scores` uses this verdict instead of judging it again: the same numbers
        and running threshold, off the path from the bucket's close to its commit. Series whose
        bucket was already judged ahead at the same value are skipped. Returns how many buckets
        were scored."""
        if not self.s.detect.rcf:
            return 0
        self.learn_pending()
        todo: list[tuple[str, RCFDetector, float]] = []
        for key, v in zip(keys, np.asarray(values, dtype=float).tolist(), strict=True):
            det = self.forests.get(key)
            if det is None or not det.forest.is_warm:
                continue
            if _still_fresh(self._ahead.get(key), det, v):
                continue
            todo.append((key, det, v))
        scored = self._attribute([det for _, det, _ in todo], [v for _, _, v in todo])
        if scored is None:  # forests of mixed configurations: they are scored when they close
            return 0
        for (key, det, v), (score, high, low) in zip(todo, scored, strict=True):
            # the verdict's threshold too: the running threshold changes only when it learns;
            # its explanation is encoded now too, for the score row written at the commit
            verdict = det.judge(score, high, low)
            _ = verdict.explanation_json
            self._ahead[key] = (det, det.forest.records_, v, verdict)
        return len(todo)

    def learn_pending(self) -> None:
        """Teach the forests the buckets :meth:`rcf_scores` scored last (after their commit)."""
        pending, self._pending = self._pending, []
        for det, x, score in pending:
            det.learn_scored(x, score)

    def drop_pending(self) -> None:
        """Forget the scored buckets not learned yet (their batch did not commit), and the
        buckets scored ahead."""
        self._pending = []
        self._ahead = {}

    def reset_forests(self) -> None:
        """Forget every series' forest (and any bucket pending for one)."""
        self.forests.clear()
        self._table = ForestTable()
        self._pending = []
        self._ahead = {}

    def prime(self) -> None:
        """Ready the compiled kernels (loaded from Numba's disk cache, or compiled on a first run,
        some 20 s) on throwaway detectors of the bank's configuration, so that no live batch pays
        for them: the default detectors' fleet, and what scoring many forests at once needs."""
        self._prime_defaults()
        self._prime_forests()

    def _prime_defaults(self) -> None:
        if self.default_config is None or DetectorBank.defaults_primed:
            return
        fleet = DefaultFleet(self.default_config, bucket_seconds=self.s.bucket_width())
        rows = np.repeat(fleet.add(1), 2)  # two buckets take every compiled path
        starts = np.arange(2, dtype=np.int64) * self.s.bucket_width() * 1_000_000_000
        fleet.run(rows, starts, np.ones(2))
        DetectorBank.defaults_primed = True

    def _prime_forests(self) -> None:
        config = self._config("__prime__")
        kind = forest_kind(config)
        if not self.s.detect.rcf or kind in ForestTable.primed:
            return
        det = RCFDetector(config)
        det.forest.update(np.zeros(det.config.sub_sample_size))
        table = ForestTable()
        slots = table.slots([det.forest])
        if slots is not None:
            table.attribute(det.query(0.0).reshape(1, -1), slots, self.workers)
        ForestTable.primed.add(kind)

    def _forest(self, key: str) -> RCFDetector:
        det = self.forest(key)
        assert det is not None
        return det

    def warm_forest(self, key: str, values: np.ndarray) -> None:
        """Teach the series' forest stored buckets, oldest first, in one pass over its trees: what
        ``learn_one`` per bucket would do (the running score threshold included)."""
        det = self.forest(key)
        if det is None or not len(values):
            return
        forest = det.forest
        warm_from = max(forest.config.sub_sample_size - forest.records_, 0)
        scores = forest.process(np.asarray(values, dtype=float).reshape(-1, 1)).scores
        for score in scores[warm_from:].tolist():
            det._observe(score)
        self._table.slots([forest])  # its arrays join the batch scoring's table now, not live

    def adopt_forest(self, key: str, det: RCFDetector) -> None:
        """Make ``det`` (with its running threshold) the series' forest, its arrays joining the
        batch scoring's table now rather than in the first live batch that scores it (a forest
        restored or copied from elsewhere; it must have the bank's trees, samples and shingle)."""
        if not self.s.detect.rcf:
            raise UsageError(f"cannot adopt a forest for {key!r}: detect.rcf is off")
        want, have = forest_kind(self._config(key)), forest_kind(det.config)
        if have != want:
            raise UsageError(
                f"cannot adopt a forest of {have} (trees, samples, shingle) for {key!r}",
                hint="the bank's forests have {} trees, {} samples and shingle {}".format(*want),
            )
        self.forests[key] = det
        if det.forest.arrays_ is not None:
            self._table.slots([det.forest])

    def load(self, store: Store) -> ModelSet:
        """Build a model set from the newest stored version of every Mean Predictor."""
        models = ModelSet()
        for row in store.latest_models(MODEL_PREFIX):  # one query, not one per series
            name = row["name"]
            if row["artifact"] is None:
                continue
            predictor = MeanPredictor.restore(json.loads(bytes(row["artifact"]).decode()))
            key = name.removeprefix(MODEL_PREFIX)
            models.versions[key] = int(row["version"])
            if key == FLEET:
                models.fleet = predictor
            else:
                models.bands[key] = self._band(predictor)
        models.bands.trim()
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
        bands = models.bands
        n = len(keys)
        uniq, inv = np.unique(starts, return_inverse=True)
        index = pd.DatetimeIndex(pd.to_datetime(uniq, unit="s", utc=True))
        series = bands.rows(keys)
        out: list[Verdict] = [Verdict(score=0.0, anomalous=False)] * n
        banded = np.flatnonzero(series >= 0)
        if len(banded):
            x = np.asarray(values, dtype=float)[banded]
            kinds = bands.kinds(series[banded])
            mean, dev = np.empty(len(banded)), np.empty(len(banded))
            for kind in np.unique(kinds).tolist():  # series sharing parameters share codes
                at = np.flatnonzero(kinds == kind)
                codes = bands.predictor_of(kind).codes(index)
                mean[at], dev[at] = bands.lookup(series[banded[at]], codes[inv[banded[at]]])
            rule = bands.rule_of(int(kinds[0]))  # one decision rule: the bank's settings
            for i, v in zip(banded.tolist(), rule.verdicts(x, mean, dev), strict=True):
                out[i] = v
        cold: dict[str, list[int]] = {}
        for i in np.flatnonzero(series < 0).tolist():
            cold.setdefault(keys[i], []).append(i)
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


def forest_kind(config: RCFConfig) -> tuple[int, int, int]:
    """What forests must share to be scored together: (trees, samples, shingle)."""
    return (config.number_of_trees, config.sub_sample_size, config.shingle_size)


_QUIET = Verdict(score=0.0, anomalous=False)
WARMING_UP = "none"  # the default detector's confidence before its warm-up is over


def default_config(settings: Settings) -> DetectorConfig:
    """The default detector's parameters from ``[detect]`` (``default_*`` keys), in the settings'
    ``timezone`` and public holidays (``holidays_country`` / ``holidays_subdiv``)."""
    d = settings.detect
    try:
        config = DetectorConfig(
            components=tuple(d.default_components),
            threshold=d.default_threshold,
            critical=d.default_critical,
            holdoff=d.default_holdoff,
            warmup=d.default_warmup,
            timezone=settings.timezone,
            holidays_country=settings.holidays_country or None,
            holidays_subdiv=settings.holidays_subdiv or None,
        )
        config.validate()
    except UsageError as exc:
        raise ConfigError(
            f"[detect] default detector: {exc.message}",
            hint="fix the detect.default_* keys (see docs/configuration.md)",
        ) from exc
    return config


def default_verdicts(res: Detections, values: np.ndarray) -> list[Verdict]:
    """Verdicts from the default detector's detections, with the expected value and the σ it derives.

    A verdict is anomalous where the detector *flagged* the bucket (every bucket of an incident, not
    only its paged first one: the notifier's episodes make one notification of a run of flags), and
    its score is the undamped one the flag reads. ``deviation`` is the σ that standardized the
    residual (``|x - expected| / |z|``), so that ``(x - expected) / deviation`` is the detector's own
    ``z``; the explanation holds each component's score (numbers: what drove it) and ``z`` as text,
    and ``confidence: none`` during the detector's warm-up (the processor lets the band decide then)."""
    x = np.asarray(values, dtype=float)
    exp, z = np.asarray(res.expected, dtype=float), np.asarray(res.z, dtype=float)
    known = np.isfinite(exp)
    has_dev = known & np.isfinite(z) & (z != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.abs(x - exp) / np.abs(z)
    direction = np.where(~known | (x == exp), "none", np.where(x > exp, "spike", "drop"))
    names = list(res.components)
    drivers = zip(*(res.components[k].astype(float).tolist() for k in names), strict=True)
    out = []
    for exp_i, known_i, dev_i, has_dev_i, z_i, way, score, flag, critical, warm, parts in zip(
        exp.tolist(),
        known.tolist(),
        dev.tolist(),
        has_dev.tolist(),
        z.tolist(),
        direction.tolist(),
        np.asarray(res.undamped, dtype=float).tolist(),
        np.asarray(res.anomalous, dtype=bool).tolist(),
        (np.asarray(res.severity) == "critical").tolist(),
        np.asarray(res.warm, dtype=bool).tolist(),
        drivers if names else [()] * len(x),
        strict=True,
    ):
        explanation: dict[str, object] = dict(zip(names, parts, strict=True))
        explanation["z"] = f"{z_i:.2f}"
        if not warm:
            explanation["confidence"] = WARMING_UP
        out.append(
            Verdict(
                score=score,
                anomalous=flag,
                expected=exp_i if known_i else None,
                deviation=dev_i if has_dev_i else None,
                direction=way,
                severity="critical" if critical else "warning",
                explanation=explanation,
            )
        )
    return out


def _still_fresh(
    got: tuple[RCFDetector, int, float, Verdict] | None, det: RCFDetector, x: float
) -> bool:
    """Whether a verdict judged ahead still holds: the same forest, unchanged since, same value."""
    return got is not None and got[0] is det and got[1] == det.forest.records_ and got[2] == x
