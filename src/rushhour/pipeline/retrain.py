"""Retraining: the blog's Glue job. Refit every series' Mean Predictor from stored history.

For each series with at least ``pipeline.min_history`` of stored buckets in the last
``pipeline.train_weeks`` weeks: fit the Mean Predictor, leaving out public holidays and the buckets
that paged: those the *deciding* detector (``detect.alert_by``) stored as anomalies, and those the band
stored while it decided for a series whose default detector was still warming up. A bucket only another
detector flagged (an RCF or band verdict that raised no alert) stays in the training data; save it as a new model version; score
the training window with it and record the cut-off ``mean + 3·std`` of those scores, with its update
time, in the cut-off history (the seed's ``anomaly_cut_off`` table). The fleet baseline, used to score
series that have no model yet, is fitted on the sum of all trained series, each scaled to mean 1.

The result is a :class:`~rushhour.pipeline.detectors.ModelSet` that the runtime swaps in whole.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from cronsim import CronSim
from sqlalchemy import select

from rushhour.detect.mean_band import MeanBandDetector
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.pipeline.detectors import DEFAULT, FLEET, DetectorBank, ModelSet, model_name
from rushhour.settings import Settings
from rushhour.store import schema as t
from rushhour.store.db import Store
from rushhour.timeutil import to_epoch, utc, zone

CUTOFF_K = 3.0


@dataclass
class TrainReport:
    trained: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    cutoffs: dict[str, float] = field(default_factory=dict)
    fleet: bool = False
    models: ModelSet | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "trained": self.trained,
            "skipped": self.skipped,
            "cutoffs": {k: round(v, 4) for k, v in self.cutoffs.items()},
            "fleet": self.fleet,
        }


def next_run(cron: str, after: datetime, tz: str) -> datetime | None:
    """The next time ``cron`` fires after ``after``, read in local zone ``tz``; None when disabled."""
    if not cron.strip():
        return None
    local = after.astimezone(zone(tz)).replace(tzinfo=None)
    nxt = next(CronSim(cron, local))
    return utc(nxt.replace(tzinfo=zone(tz)))


def _predictor(settings: Settings) -> MeanPredictor:
    return MeanPredictor(
        key=settings.detect.key,
        deviation=settings.detect.deviation,
        timezone=settings.timezone,
        freq=f"{settings.bucket_width()}s",
        smooth=3,
        holidays_country=settings.holidays_country,
        holidays_subdiv=settings.holidays_subdiv,
    )


def _anomaly_windows(
    store: Store, width: int, bank: DetectorBank
) -> dict[int, list[tuple[datetime, datetime]]]:
    """The buckets that paged, of every series, as windows to leave out: those the deciding detector
    stored as anomalies and, with the default detector deciding, those the band stored during a
    series' first ``detect.default_warmup`` buckets (the band decides while the default detector
    warms up: a new series' incidents are the band's)."""
    a = t.anomalies.c
    decider = bank.decider
    cold: dict[int, int] = {}  # per series: the first bucket the default detector decides
    if decider == DEFAULT:
        warm = bank.s.detect.default_warmup * width
        cold = {sid: first + warm for sid, first in store.first_buckets().items()}
    out: dict[int, list[tuple[datetime, datetime]]] = {}
    query = select(a.series_id, a.start, a.detector).where(a.detector.in_({decider, bank.name}))
    with store.engine.connect() as conn:
        for sid, start, detector in conn.execute(query.distinct()):
            if detector == decider or start < cold.get(int(sid), start):
                out.setdefault(int(sid), []).append((_dt(start), _dt(start + width - 1)))
    return out


def _dt(epoch: int) -> datetime:
    return pd.Timestamp(epoch, unit="s", tz="UTC").to_pydatetime()


def train(
    settings: Settings,
    store: Store,
    now: datetime,
    progress: Callable[[int, int, str], None] | None = None,
    exclude: dict[str, list[tuple[datetime, datetime]]] | None = None,
) -> TrainReport:
    """Refit every series with enough history; record cut-offs; return the new model set."""
    report = TrainReport()
    width = settings.bucket_width()
    horizon = int(timedelta(weeks=settings.pipeline.train_weeks).total_seconds())
    latest = store.last_buckets()
    needed = settings.pipeline.min_history_seconds()
    series = store.all_series()
    normalised: list[pd.Series] = []
    bank = DetectorBank(settings)
    stored_anomalies = _anomaly_windows(store, width, bank)
    for i, ref in enumerate(series):
        if progress:
            progress(i, len(series), f"training {ref.key}")
        # each series trains on the weeks before its own newest bucket (backfilled history counts)
        until = min(to_epoch(now), latest.get(ref.id, 0) + width)
        history = store.read_buckets(ref.id, until - horizon, until)
        if history.empty or (len(history) * width) < needed:
            span = len(history) * width / 3600
            report.skipped[ref.key] = (
                f"{span:.1f} h of history, needs {settings.pipeline.min_history}"
            )
            continue
        windows = stored_anomalies.get(ref.id, []) + list((exclude or {}).get(ref.key, []))
        model = _predictor(settings).fit(history, exclude=windows, exclude_holidays=True)
        version = store.save_model(
            model_name(ref.key),
            "mean_predictor",
            json.dumps(model.snapshot()).encode(),
            series_id=ref.id,
            params={"key": model.key, "train_weeks": settings.pipeline.train_weeks},
            trained_at=until,
        )
        cutoff = _cutoff(bank._band(model), history)
        with store.begin() as tx:
            tx.execute(
                t.cutoffs.insert().values(
                    series_id=ref.id, model=bank.name, update_time=until, score_cutoff=cutoff
                )
            )
        if settings.detect.rcf:
            _train_forest(settings, store, ref, history, until)
        report.trained.append(ref.key)
        report.cutoffs[ref.key] = cutoff
        del version
        mean = float(history.mean())
        if mean > 0:
            normalised.append(history / mean)
    if normalised:
        fleet_series = pd.concat(normalised, axis=1).mean(axis=1)
        fleet = _predictor(settings).fit(fleet_series, exclude_holidays=True)
        store.save_model(
            model_name(FLEET),
            "mean_predictor",
            json.dumps(fleet.snapshot()).encode(),
            params={"series": len(normalised)},
            trained_at=until,
        )
        report.fleet = True
    if progress:
        progress(len(series), len(series), "trained")
    report.models = bank.load(store)
    return report


def _train_forest(
    settings: Settings, store: Store, ref: Any, history: pd.Series, until: int
) -> None:
    """A SageMaker-style batch forest over the series' shingled history (served by the API's
    invocations endpoint), with its cut-off: mean + 3·std of its scores on the newest windows."""
    from rushhour.detect.rcf.batch import BatchConfig, BatchRandomCutForest
    from rushhour.detect.rcf.state import save

    shingle = settings.detect.rcf_shingle
    x = history.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < shingle + 10:
        return
    windows = np.lib.stride_tricks.sliding_window_view(x, shingle)
    config = BatchConfig(feature_dim=shingle, num_trees=settings.detect.rcf_trees, seed=ref.id)
    forest = BatchRandomCutForest(config).fit(windows)
    scores = forest.score(windows[-5000:])
    buf = io.BytesIO()
    save(forest, buf)
    store.save_model(
        f"rcf/{ref.key}",
        "rcf",
        buf.getvalue(),
        series_id=ref.id,
        params={"feature_dim": shingle, "num_trees": config.num_trees},
        trained_at=until,
    )
    with store.begin() as tx:
        tx.execute(
            t.cutoffs.insert().values(
                series_id=ref.id,
                model="rcf",
                update_time=until,
                score_cutoff=float(scores.mean() + CUTOFF_K * scores.std()),
            )
        )


def _cutoff(band: MeanBandDetector, history: pd.Series) -> float:
    """mean + 3·std of the band's scores over its own training window."""
    verdicts = band.score_many(pd.DatetimeIndex(history.index), history.to_numpy(dtype=float))
    scores = np.array([v.score for v in verdicts], dtype=float)
    scores = scores[np.isfinite(scores)]
    return float(scores.mean() + CUTOFF_K * scores.std()) if len(scores) else float("nan")


def cutoff_history(store: Store, series_id: int | None = None) -> list[dict[str, object]]:
    """The cut-off rows (series, model, update_time, score_cutoff), newest first."""
    q = select(t.cutoffs).order_by(t.cutoffs.c.update_time.desc(), t.cutoffs.c.id.desc())
    if series_id is not None:
        q = q.where(t.cutoffs.c.series_id == series_id)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
