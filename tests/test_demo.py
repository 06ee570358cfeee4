"""The demo on the live pipeline: history and models at first start, live traffic, restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from rushhour.pipeline.clock import SystemClock
from rushhour.pipeline.demo import choose_live_start, demo_series, prepare_demo
from rushhour.pipeline.service import build_runtime
from rushhour.pipeline.spec import DemoSpec
from rushhour.settings import load_settings
from rushhour.store import open_store
from rushhour.testing import FakeClock, ListChannel

NOW = 1_795_200_000.0  # Fri 2026-11-20 ~15:20 UTC


def _settings(tmp_path: Path, url: str | None = None):  # type: ignore[no-untyped-def]
    overrides = {
        "data_dir": str(tmp_path),
        "demo": {"history_weeks": 2, "speed": 600},
        "pipeline": {"retrain_cron": ""},
    }
    if url:
        overrides["store"] = {"url": url}
    s = load_settings(environ={}, overrides=overrides)
    return s.model_copy(update={"source": [DemoSpec(type="demo")]})


def _run(settings, channel: ListChannel, seconds: float):  # type: ignore[no-untyped-def]
    store = open_store(settings.store_url())
    position = prepare_demo(settings, store, FakeClock(wall=NOW))
    runtime = build_runtime(settings, store, SystemClock(), [channel])
    stats = asyncio.run(runtime.run(duration=seconds))
    after = store.checkpoint("source:demo")
    return store, position, stats, after


def test_live_start_is_a_weekday_morning() -> None:
    t = datetime.fromtimestamp(choose_live_start(NOW, "UTC", 60), tz=UTC)
    assert (t.weekday(), t.hour, t.minute) == (4, 7, 0)
    sunday = datetime(2026, 11, 22, 12, tzinfo=UTC).timestamp()
    t2 = datetime.fromtimestamp(choose_live_start(sunday, "UTC", 60), tz=UTC)
    assert (t2.weekday(), t2.day) == (4, 20)


def test_first_start_learns_history_then_finds_the_demo_spike(tmp_path: Path) -> None:
    channel = ListChannel()
    settings = _settings(tmp_path)
    store, position, _, after = _run(settings, channel, 1.5)
    assert position["first_start"] is True
    summary = store.series_summary()
    assert len(summary) == 3
    assert all(row["buckets"] >= 14 * 1440 for row in summary)
    assert (
        len([m for m in store.list_models() if m["name"].startswith("mean_predictor/")]) == 4
    )  # + fleet
    assert after is not None and after["next"] > position["next"]
    firing = [e for e in channel.alerts if e.status == "firing"]
    spike = datetime.fromtimestamp(position["live_start"] + 20 * 60, tz=UTC)
    # the default detector decides (no config): the 07:20 3x spike is one episode, announced once
    # when it opens and once when it resolves, lasting its six buckets (every one of them flagged)
    _, labels, _ = demo_series(settings)[0]
    ours = [e for e in channel.alerts if e.start == spike and e.labels == labels]
    assert [e.status for e in ours if not e.repeat] == ["firing", "resolved"], [
        e.sentence() for e in firing
    ]
    assert all(e.detector == "default" and e.direction == "spike" for e in ours)
    assert ours[-1].buckets == 6
    ok = next(r["id"] for r in store.series_summary() if r["labels"] == labels)
    flagged = {
        a["start"]
        for a in store.anomalies(limit=10_000, series_id=ok)
        if a["detector"] == "default"
    }
    first = int(spike.timestamp())
    assert {first + 60 * i for i in range(6)} <= flagged
    assert store.count_anomalies() >= 5
    store.close()


def test_restart_continues_where_it_stopped_without_double_counting(tmp_path: Path) -> None:
    channel = ListChannel()
    settings = _settings(tmp_path)
    store, _, _, after = _run(settings, channel, 0.5)
    stopped_at = after["next"]
    buckets = sum(r["buckets"] for r in store.series_summary())
    store.close()

    store, position, _, after2 = _run(settings, channel, 0.5)
    assert position["first_start"] is False and position["next"] == stopped_at
    assert after2["next"] > stopped_at
    total = sum(r["buckets"] for r in store.series_summary())
    # every live bucket is stored once: history + (live span) per series, give or take the open ones
    live = (after2["next"] - position["live_start"]) // 60
    assert buckets < total <= 3 * (14 * 1440 + live + 3)
    fired = [a.id for a in channel.alerts if a.status == "firing"]
    assert len(fired) == len(set(fired)), "an alert was delivered twice across the restart"
    store.close()


def test_demo_runs_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    channel = ListChannel()
    store, _, _, _ = _run(_settings(tmp_path, pg_url), channel, 1.0)
    assert store.dialect == "postgresql"
    assert store.count_anomalies() > 0
    store.close()
