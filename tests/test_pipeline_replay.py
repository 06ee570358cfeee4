"""The replay source, driven by a fake clock: at 08:00 it sends 07:45-08:00 of the default week."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rushhour.pipeline.sources.replay import ReplaySource
from rushhour.pipeline.spec import ReplaySpec
from rushhour.testing import FakeClock


def _dataset(path: Path) -> None:
    # two weeks from Monday 2026-03-02; value encodes weekday, hour and minute so we can check slots
    rows = ["timestamp,value"]
    for day in range(14):
        for minute in range(1440):
            t = datetime(2026, 3, 2 + day if day < 30 else 1, tzinfo=UTC).timestamp() + minute * 60
            value = (day % 7) * 10000 + (minute // 60) * 100 + minute % 60 + (day // 7) * 1_000_000
            rows.append(f"{int(t)},{value}")
    path.write_text("\n".join(rows) + "\n")


def test_replay_sends_the_last_quarter_hour_of_the_default_week(tmp_path: Path) -> None:
    _dataset(tmp_path / "week.csv")
    # Wednesday 2026-11-18 08:00:30 UTC
    clock = FakeClock(wall=datetime(2026, 11, 18, 8, 0, 30, tzinfo=UTC).timestamp())
    spec = ReplaySpec(type="replay", path="week.csv", series="api")
    src = ReplaySource(spec, base=tmp_path, clock=clock, width=60)
    asyncio.run(src.open(None))

    batch = asyncio.run(src.next_batch())
    assert batch is not None
    times = [datetime.fromtimestamp(x, UTC) for x in batch.points.times]
    assert times[0] == datetime(2026, 11, 18, 7, 45, tzinfo=UTC)
    assert times[-1] == datetime(2026, 11, 18, 7, 59, tzinfo=UTC) and len(times) == 15
    # the default week is the first full week; Wednesday is day 2 of it
    assert batch.points.values.tolist() == [2 * 10000 + 7 * 100 + m for m in range(45, 60)]
    assert asyncio.run(src.next_batch()) is None  # nothing more until 08:15

    clock.advance(15 * 60)
    nxt = asyncio.run(src.next_batch())
    assert nxt is not None and nxt.position == {
        "sent_until": int(datetime(2026, 11, 18, 8, 15, tzinfo=UTC).timestamp())
    }
    assert nxt.points.values[0] == 2 * 10000 + 8 * 100

    # after a restart it resumes after the last batch committed, without repeating it
    again = ReplaySource(spec, base=tmp_path, clock=clock, width=60)
    asyncio.run(again.open(nxt.position))
    assert asyncio.run(again.next_batch()) is None


def test_replay_speed_and_explicit_week(tmp_path: Path) -> None:
    _dataset(tmp_path / "week.csv")
    clock = FakeClock(wall=datetime(2026, 11, 16, 0, 0, tzinfo=UTC).timestamp())  # Monday 00:00
    spec = ReplaySpec(
        type="replay", path="week.csv", series="api", week_start="2026-03-09", speed=60
    )
    src = ReplaySource(spec, base=tmp_path, clock=clock, width=60)
    asyncio.run(src.open(None))
    first = asyncio.run(src.next_batch())
    assert first is not None and np.all(first.points.values >= 1_000_000)  # the second week
    clock.advance(15)  # 15 wall seconds at 60x = 15 minutes
    assert asyncio.run(src.next_batch()) is not None
