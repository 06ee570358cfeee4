"""Exactly once under SIGKILL: kill a real `rushhour run` at random moments, restart it, compare totals.

Runs with the inbox source on SQLite and on PostgreSQL, and with NATS JetStream.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rushhour.store import open_store
from rushhour.store import schema as t
from tests.pipeline_helpers import points_file, rushhour, spawn, write_config

START = 1_772_409_600  # Monday 2026-03-02 00:00 UTC
FILES = 30
MINUTES = 240


def _db_state(url: str) -> tuple[float, int, int, int]:
    store = open_store(url)
    with store.engine.connect() as conn:
        total = float(
            conn.execute(select(func.coalesce(func.sum(t.buckets.c.value), 0))).scalar_one()
        )
        buckets = int(conn.execute(select(func.count()).select_from(t.buckets)).scalar_one())
        seen = int(
            conn.execute(
                select(func.count())
                .select_from(t.checkpoints)
                .where(t.checkpoints.c.source.like("seen:%"))
            ).scalar_one()
        )
        anomalies = int(conn.execute(select(func.count()).select_from(t.anomalies)).scalar_one())
    store.close()
    return total, buckets, seen, anomalies


def _kill_and_restart(cfg: Path, cwd: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(rounds):
        proc = spawn("run", "--config", str(cfg), "--drain", "--json", cwd=cwd)
        time.sleep(rng.uniform(1.2, 3.0))  # start-up takes about a second; then batches commit
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    done = rushhour("run", "--config", str(cfg), "--drain", "--json", cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_sigkill_inbox_exactly_once(tmp_path: Path, store_url: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    total = sum(
        points_file(inbox / f"part{i:02d}.jsonl", START + i * MINUTES * 60, MINUTES)
        for i in range(FILES)
    )
    cfg = write_config(tmp_path / "rushhour.toml", store_url, [{"type": "inbox", "path": "inbox"}])
    _kill_and_restart(cfg, tmp_path, rounds=3, seed=len(store_url))
    stored, buckets, seen, _ = _db_state(store_url)
    assert stored == total, "a record was lost or counted twice"
    assert buckets == FILES * MINUTES
    assert seen == FILES
    assert list(inbox.iterdir()) == []
    assert len(list((tmp_path / "finished").iterdir())) == FILES


async def _publish(url: str, stream: str, subject: str, messages: list[bytes]) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    for m in messages:
        await js.publish(subject, m)
    await nc.drain()


async def _consumer_state(url: str, stream: str, durable: str) -> tuple[int, int]:
    import nats

    nc = await nats.connect(url)
    info = await nc.jetstream().consumer_info(stream, durable)
    await nc.drain()
    return info.num_pending, info.num_ack_pending


async def _drop_stream(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url)
    await nc.jetstream().delete_stream(stream)
    await nc.drain()


@pytest.mark.slow
def test_sigkill_nats_exactly_once(tmp_path: Path, nats_url: str) -> None:
    stream = f"RH_TEST_{uuid.uuid4().hex[:8].upper()}"
    subject = f"rh.test.{stream.lower()}"
    messages, total = [], 0.0
    for i in range(120):
        lines = []
        for m in range(40):
            value = 1 + (i + m) % 7
            total += value
            lines.append(
                json.dumps({"series": "api", "time": START + (i * 40 + m) * 60, "value": value})
            )
        messages.append(("\n".join(lines) + "\n").encode())
    asyncio.run(_publish(nats_url, stream, subject, messages))
    url = f"sqlite:///{tmp_path / 'rh.db'}"
    source = {
        "type": "nats",
        "url": nats_url,
        "stream": stream,
        "subject": subject,
        "durable": "rh",
        "fetch": 4,
    }
    cfg = write_config(tmp_path / "rushhour.toml", url, [source])
    try:
        _kill_and_restart(cfg, tmp_path, rounds=3, seed=7)
        stored, buckets, _, _ = _db_state(url)
        assert stored == total, "a record was lost or counted twice"
        assert buckets == 120 * 40
        assert asyncio.run(_consumer_state(nats_url, stream, "rh")) == (0, 0), (
            "unacknowledged messages remain"
        )
    finally:
        asyncio.run(_drop_stream(nats_url, stream))
