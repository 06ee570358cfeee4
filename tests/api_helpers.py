"""Helpers of the API tests: a store with trained history, scores and anomalies; a real server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rushhour.api.auth import TokenGuard
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.retrain import train
from rushhour.series.generate import generate_traffic
from rushhour.settings import Settings, load_settings
from rushhour.store.db import AnomalyRecord, Store

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
START = datetime(2026, 3, 3, tzinfo=UTC)  # a Tuesday: the scored last day is a Monday


def settings_for(tmp: Path, store_url: str | None = None, **api: Any) -> Settings:
    overrides: dict[str, Any] = {
        "data_dir": str(tmp / "data"),
        "pipeline": {"retrain_cron": "", "min_history": "1d"},
        "api": {"port": 0, **api},
    }
    if store_url:
        overrides["store"] = {"url": store_url}
    return load_settings(None, overrides, environ={})


def guard() -> TokenGuard:
    return TokenGuard.resolve(TOKEN, Path("/nonexistent"))[0]


@dataclass
class Seeded:
    series_id: int
    key: str
    last: int
    anomalies: int


def seed(store: Store, settings: Settings, weeks: int = 2) -> Seeded:
    """Two weeks of synthetic traffic, a trained Mean Predictor, and the last day scored."""
    traffic = generate_traffic(START, weeks=weeks, seed=3, anomalies_per_day=3)
    series = traffic.series.astype(float).copy()
    spike = series.index[-1440 + 600 : -1440 + 606]  # 10:00-10:06 on the last day, tripled
    series[spike] = series[spike] * 3
    starts = (series.index.asi8 // 1_000_000_000).tolist()
    with store.begin() as tx:
        ref = store.ensure_series(tx, "requests", {"region": "eu"}, 60)
        store.write_buckets(tx, ref.id, starts, series.tolist())
    # trained on all days but the last, which is then scored as if live
    report = train(settings, store, START + timedelta(weeks=weeks, days=-1))
    assert report.models is not None and ref.key in report.trained
    bank = DetectorBank(settings)
    day = starts[-1440:]
    verdicts = bank.score(ref.key, day, series.tolist()[-1440:], report.models)
    n = 0
    with store.begin() as tx:
        rows = []
        for st, value, v in zip(day, series.tolist()[-1440:], verdicts, strict=True):
            rows.append(
                {
                    "series_id": ref.id,
                    "start": st,
                    "detector": "mean_band",
                    "score": v.score,
                    "expected": v.expected,
                    "deviation": v.deviation,
                    "explanation": json.dumps(v.explanation) if v.explanation else None,
                }
            )
            if v.anomalous:
                n += store.add_anomalies(
                    tx,
                    [
                        AnomalyRecord(
                            series_id=ref.id,
                            start=st,
                            detector="mean_band",
                            value=value,
                            expected=v.expected,
                            deviation=v.deviation,
                            sigma=v.sigma_at(value),
                            score=v.score,
                            direction=v.direction,
                            severity=v.severity,
                            detected_at=st + 60,
                            explanation=json.dumps(v.explanation) if v.explanation else None,
                        )
                    ],
                )
        store.write_scores(tx, rows)
    return Seeded(ref.id, ref.key, starts[-1], n)


@contextmanager
def live_server(settings: Settings, store: Store, **kw: Any) -> Iterator[tuple[str, Any]]:
    """The API and pipeline on a real uvicorn server on 127.0.0.1, in a thread with its own loop."""
    from rushhour.api.server import serve_with_pipeline
    from rushhour.pipeline.clock import SystemClock

    loop = asyncio.new_event_loop()
    box: dict[str, Any] = {}
    ready = threading.Event()

    def on_ready(url: str) -> None:
        box["url"] = url
        ready.set()

    def on_runtime(rt: Any) -> None:
        box["runtime"] = rt

    def main() -> None:
        try:
            box["stats"] = loop.run_until_complete(
                serve_with_pipeline(
                    settings, store, SystemClock(), on_ready=on_ready, on_runtime=on_runtime, **kw
                )
            )
        except BaseException as exc:
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    # a first start in a fresh checkout compiles the detectors' kernels before it answers
    assert ready.wait(300), "the server did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield box["url"], box["runtime"]
    finally:
        loop.call_soon_threadsafe(box["runtime"].stop)
        thread.join(30)
        loop.close()
