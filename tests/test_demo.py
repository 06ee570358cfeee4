"""The demo main job, driven by a fake clock."""

from pathlib import Path

import pytest

from rushhour.pipeline.demo import DemoJob, choose_live_start
from rushhour.settings import load_settings
from rushhour.store import open_store
from rushhour.testing import FakeClock, ListChannel

NOW = 1_795_200_000.0  # Fri 2026-11-20 ~15:20 UTC


def _job(tmp_path: Path, channel: ListChannel, url: str | None = None) -> DemoJob:
    settings = load_settings(
        environ={}, overrides={"data_dir": str(tmp_path), "demo": {"history_weeks": 2}}
    )
    store = open_store(url or settings.store_url())
    return DemoJob(settings, store, FakeClock(wall=NOW), [channel])


def test_live_start_is_a_weekday_morning() -> None:
    from datetime import UTC, datetime

    t = datetime.fromtimestamp(choose_live_start(NOW, "UTC", 60), tz=UTC)
    assert (t.weekday(), t.hour, t.minute) == (4, 7, 0)
    sunday = datetime(2026, 11, 22, 12, tzinfo=UTC).timestamp()
    t2 = datetime.fromtimestamp(choose_live_start(sunday, "UTC", 60), tz=UTC)
    assert (t2.weekday(), t2.day) == (4, 20)


def test_first_start_learns_history_then_finds_the_demo_spike(tmp_path: Path) -> None:
    channel = ListChannel()
    job = _job(tmp_path, channel)
    position = job.prepare()
    assert position["first_start"] is True
    summary = job.store.series_summary()[0]
    assert summary["buckets"] == 14 * 1440
    assert job.store.load_model("demo/mean_predictor") is not None
    stats = job.run(duration=1.0)  # one wall second at 60 simulated minutes per second
    assert stats.buckets == 60
    firing = [e for e in channel.events if e.status == "firing"]
    assert firing, "the demo must show an anomaly within its first simulated hour"
    first = firing[0]
    assert (
        first.direction == "spike"
        and first.expected is not None
        and first.value > 2 * first.expected
    )
    assert job.store.count_anomalies() >= 5


def test_restart_continues_where_it_stopped_without_double_counting(tmp_path: Path) -> None:
    channel = ListChannel()
    job = _job(tmp_path, channel)
    job.prepare()
    job.run(duration=0.5)
    stopped_at = job.position["next"]
    stored = job.store.count_anomalies()
    job.store.close()

    again = _job(tmp_path, channel)
    position = again.prepare()
    assert position["first_start"] is False
    assert position["next"] == stopped_at
    again.run(duration=0.5)
    summary = again.store.series_summary()[0]
    assert summary["buckets"] == 14 * 1440 + 60  # history + one hour, nothing twice
    assert again.store.count_anomalies() >= stored
    starts = [e.start for e in channel.events if e.status == "firing"]
    assert len(starts) == len(set(starts)), "an episode fired twice across the restart"


@pytest.mark.services
def test_demo_runs_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    channel = ListChannel()
    job = _job(tmp_path, channel, pg_url)
    job.prepare()
    job.run(duration=1.0)
    assert job.store.dialect == "postgresql"
    assert job.store.count_anomalies() > 0
