"""Retraining: models and cut-offs from stored history, and a hot swap while points keep flowing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from rushhour.pipeline.clock import SystemClock
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.retrain import cutoff_history, next_run, train
from rushhour.pipeline.service import build_runtime
from rushhour.pipeline.sources.queue import QueueSource
from rushhour.series.generate import generate_traffic
from rushhour.settings import load_settings
from rushhour.store import Store
from rushhour.store import schema as t
from rushhour.store.db import AnomalyRecord
from rushhour.testing import ListChannel

START = datetime(2026, 3, 2, tzinfo=UTC)


def _batch(series: str, times: np.ndarray, values: np.ndarray) -> PointBatch:
    rows = [
        (series, {"region": "eu"}, float(t), float(v)) for t, v in zip(times, values, strict=True)
    ]
    return PointBatch.from_rows(rows)


def _traffic(days: int, seed: int, start: datetime = START) -> tuple[np.ndarray, np.ndarray]:
    tr = generate_traffic(start, days=days, seed=seed, anomalies_per_day=0)
    return tr.series.index.asi8 / 1e9, tr.series.to_numpy(dtype=float)


def test_next_run_follows_cron_in_local_time() -> None:
    after = datetime(2026, 3, 4, 12, tzinfo=UTC)  # a Wednesday
    assert next_run("0 3 * * 1", after, "UTC") == datetime(2026, 3, 9, 3, tzinfo=UTC)
    assert next_run("0 3 * * 1", after, "Europe/Berlin") == datetime(2026, 3, 9, 2, tzinfo=UTC)
    assert next_run("", after, "UTC") is None


def test_retrain_hot_swap_loses_nothing(tmp_path: Path, store: Store) -> None:
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": str(tmp_path),
            "store": {"url": str(store.engine.url.render_as_string(hide_password=False))},
            # the default detector's alerts across a hot swap are what is checked here
            "detect": {"alert_by": "default"},
        },
    )
    channel = ListChannel()
    push = QueueSource()
    runtime = build_runtime(settings, store, SystemClock(), [channel], extra_sources=[push])
    history_t, history_v = _traffic(14, 1)
    live_t, live_v = _traffic(1, 2, datetime(2026, 3, 16, tzinfo=UTC))
    live_v[600:610] *= 4  # a spike at 10:00 on the live day

    async def scenario() -> None:
        task = asyncio.create_task(runtime.run())
        await push.push(_batch("api", history_t, history_v))
        assert runtime.processor.bank.models.bands == {}  # nothing trained: no per-series band yet
        report = await asyncio.to_thread(train, settings, store, datetime(2026, 3, 16, tzinfo=UTC))
        assert report.trained == ["api{region=eu}"] and report.fleet
        runtime.processor.bank.swap(report.models)  # what the scheduler does, between batches
        for lo in range(0, len(live_t), 120):  # keep pushing in pieces while swapped
            await push.push(_batch("api", live_t[lo : lo + 120], live_v[lo : lo + 120]))
        runtime.stop()
        await task

    asyncio.run(scenario())
    ref = store.all_series()[0]
    stored = store.read_buckets(ref.id)
    assert stored.sum() == history_v.sum() + live_v.sum()  # nothing lost or doubled across the swap
    cut = {row["model"]: float(row["score_cutoff"]) for row in cutoff_history(store, ref.id)}  # type: ignore[arg-type]
    assert set(cut) == {"mean_band", "rcf"}  # one cut-off per model, recorded with its update time
    assert 1.0 < cut["mean_band"] < 6.0 and 0.5 < cut["rcf"] < 5.0
    firing = [e for e in channel.alerts if e.status == "firing"]
    spike = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)
    assert any(e.start == spike and e.direction == "spike" for e in firing)
    # the default detector decides; after the swap, on the live day, it raises the spike and
    # little else (its first days of learning the history, before the swap, are not judged here)
    live = [e for e in firing if e.start >= datetime(2026, 3, 16, tzinfo=UTC)]
    assert len(live) <= 3, [e.sentence() for e in live]
    spiked = next(e for e in live if e.start == spike)
    assert spiked.detector == "default" and spiked.expected is not None
    assert spiked.value / spiked.expected > 3  # the sentence's "3.9x the expected ..."
    a = t.anomalies.c
    with store.engine.connect() as conn:
        sigma, explanation = conn.execute(
            select(a.sigma, a.explanation).where(
                (a.detector == "default") & (a.start == int(spike.timestamp()))
            )
        ).one()
    # the σ the detector derived: in the alert's sentence and in the stored anomaly
    assert spiked.sigma == pytest.approx(sigma)
    assert sigma == pytest.approx(float(json.loads(explanation)["z"]), rel=0.01)


def test_cold_start_uses_the_fleet_baseline(tmp_path: Path, store: Store) -> None:
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": str(tmp_path),
            "pipeline": {"min_history": "3d"},
            # the shipped setting: the default detector decides once it has warmed up (150 buckets)
        },
    )
    push = QueueSource()
    channel = ListChannel()
    runtime = build_runtime(settings, store, SystemClock(), [channel], extra_sources=[push])
    old_t, old_v = _traffic(14, 3)
    new_t, new_v = _traffic(2, 4, datetime(2026, 3, 16, tzinfo=UTC))
    new_v = new_v * 0.3  # a smaller service with the same rhythm
    new_v[60:70] = 0  # an outage in its first hours, while its default detector warms up
    new_v[1500:1510] = 0  # and one on its second day

    async def scenario() -> None:
        task = asyncio.create_task(runtime.run())
        await push.push(_batch("big", old_t, old_v))
        report = await asyncio.to_thread(train, settings, store, datetime(2026, 3, 16, tzinfo=UTC))
        runtime.processor.bank.swap(report.models)
        for lo in range(0, len(new_t), 240):
            await push.push(_batch("small", new_t[lo : lo + 240], new_v[lo : lo + 240]))
        runtime.stop()
        await task

    asyncio.run(scenario())
    drops = [
        e
        for e in channel.alerts
        if e.status == "firing" and e.series == "small" and e.direction == "drop"
    ]
    # the first outage is the fleet baseline's to raise (the default detector is warming up), the
    # second the default detector's
    first, second = datetime(2026, 3, 16, 1, 0, tzinfo=UTC), datetime(2026, 3, 17, 1, 0, tzinfo=UTC)
    assert [(e.start, e.detector) for e in drops if e.start in (first, second)] == [
        (first, "mean_band"),
        (second, "default"),
    ], [e.sentence() for e in drops]
    a = t.anomalies.c
    with store.engine.connect() as conn:
        small = next(ref.id for ref in store.all_series() if ref.name == "small")
        why = conn.execute(
            select(a.detector, a.explanation).where(
                (a.start == first.timestamp()) & (a.series_id == small) & (a.detector != "rcf")
            )
        ).all()
        # scored against the fleet baseline, and stored saying so; the default detector's score of
        # the same bucket says it cannot judge yet
        assert [(d, json.loads(w)["confidence"]) for d, w in why] == [("mean_band", "low")]
        warming = conn.execute(
            select(t.scores.c.explanation).where(
                (t.scores.c.start == first.timestamp())
                & (t.scores.c.series_id == small)
                & (t.scores.c.detector == "default")
            )
        ).scalar_one()
        assert json.loads(warming)["confidence"] == "none"
        outage = second.timestamp()
        # the default detector ran beside it (from the series' first bucket): the outage is stored
        found = conn.execute(
            select(a.start).where(
                (a.detector == "default")
                & (a.series_id == small)
                & (a.start >= outage)
                & (a.start < outage + 600)
            )
        ).all()
    assert found, "the default detector missed the outage"


def _spiked_history(store: Store, flagged_by: str, at: datetime) -> float:
    """Two weeks stored, the hour from ``at`` at 5x, flagged by ``flagged_by``; the hour's clean
    mean value."""
    times, values = _traffic(14, 5)
    hour = (times >= at.timestamp()) & (times < at.timestamp() + 3600)
    clean = float(values[hour].mean())
    spiked = np.where(hour, values * 5, values)
    starts = times.astype(np.int64)
    with store.begin() as conn:
        ref = store.ensure_series(conn, "api", {"region": "eu"}, 60)
        store.write_buckets(conn, ref.id, starts.tolist(), spiked.tolist())
        store.add_anomalies(
            conn,
            [
                AnomalyRecord(
                    ref.id,
                    int(s),
                    flagged_by,
                    float(v),
                    None,
                    None,
                    None,
                    1.0,
                    "spike",
                    "warning",
                    int(s),
                )
                for s, v in zip(starts[hour], spiked[hour], strict=True)
            ],
        )
    return clean


@pytest.mark.parametrize(
    ("flagged_by", "at", "left_out"),
    [
        # the deciding detector's anomalies are the incidents that paged
        ("default", datetime(2026, 3, 10, 10, tzinfo=UTC), True),
        # another detector's verdict confirms nothing
        ("rcf", datetime(2026, 3, 10, 10, tzinfo=UTC), False),
        ("mean_band", datetime(2026, 3, 10, 10, tzinfo=UTC), False),
        # ... but the band decides while a new series' default detector warms up (its first
        # 150 buckets): what it stored then paged
        ("mean_band", datetime(2026, 3, 2, 0, 30, tzinfo=UTC), True),
    ],
)
def test_training_leaves_out_the_buckets_that_paged(
    tmp_path: Path, store: Store, flagged_by: str, at: datetime, left_out: bool
) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    assert DetectorBank(settings).decider == "default"
    clean = _spiked_history(store, flagged_by, at)
    report = train(settings, store, datetime(2026, 3, 16, tzinfo=UTC))
    band = report.models.bands["api{region=eu}"]
    # two days later (a weekday too): the same time-of-day slots of the weekday profile
    index = pd.date_range(at + pd.Timedelta(days=2), periods=60, freq="1min")
    expected = float(band.predictor.expected(index)[0].mean())
    if left_out:  # the weekday profile is the clean one
        assert expected == pytest.approx(clean, rel=0.15)
    else:  # learned: a fifth weekday's hour at 5x lifts the profile
        assert expected > clean * 1.3
