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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from rushhour.errors import StoreError
from rushhour.notify.alert import Alert
from rushhour.pipeline.clock import SystemClock
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.processor import Batch, Processor
from rushhour.settings import load_settings
from rushhour.store import Store, open_store
from rushhour.store import schema as t
from tests.pipeline_helpers import points_file, rushhour, spawn, write_config

START = 1_772_409_600  # Monday 2026-03-02 00:00 UTC
FILES = 30
MINUTES = 240
# these tests check the default detector's exactly-once state, so it decides the alerts
BY_DEFAULT = {"alert_by": "default"}


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


def _stored_buckets(url: str) -> int:
    """Buckets committed so far (0 while the run has not created its store yet)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return 0
    try:
        store = open_store(url)
        with store.engine.connect() as conn:
            n = int(conn.execute(select(func.count()).select_from(t.buckets)).scalar_one())
        store.close()
    except (StoreError, SQLAlchemyError):  # the run is still creating its tables
        return 0
    return n


def _kill_and_restart(cfg: Path, cwd: Path, rounds: int, seed: int, url: str) -> list[str]:
    """SIGKILL a draining run ``rounds`` times, each time once it has committed something new (so
    every kill lands mid-stream, however long start-up takes), then let one run finish. Returns
    what each run printed."""
    rng = random.Random(seed)
    outputs = []
    for _ in range(rounds):
        before = _stored_buckets(url)
        proc = spawn("run", "--config", str(cfg), "--drain", "--json", cwd=cwd)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if _stored_buckets(url) > before:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))  # then anywhere in the next batches
        proc.send_signal(signal.SIGKILL)
        outputs.append(proc.communicate(timeout=30)[0])
    done = rushhour("run", "--config", str(cfg), "--drain", "--json", cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    return [*outputs, done.stdout]


def _inbox(folder: Path) -> float:
    """The crash tests' inbox: FILES files of MINUTES minutes, a spike in every third file."""
    folder.mkdir(parents=True)
    return sum(
        points_file(
            folder / f"part{i:02d}.jsonl",
            START + i * MINUTES * 60,
            MINUTES,
            spikes=(100, 101) if i % 3 == 1 else (),
        )
        for i in range(FILES)
    )


def _detections(url: str) -> tuple[dict[int, float], set[tuple[int, str]], list[tuple[str, str]]]:
    """The default detector's score per bucket, the anomalies stored by detectors other than the
    forest (rebuilt at start from the newest buckets, it differs after a restart), the alerts queued."""
    store = open_store(url)
    with store.engine.connect() as conn:
        s, a = t.scores.c, t.anomalies.c
        scores = dict(conn.execute(select(s.start, s.score).where(s.detector == "default")).all())
        anomalies = set(conn.execute(select(a.start, a.detector).where(a.detector != "rcf")).all())
        rows = conn.execute(select(t.alert_outbox.c.channel, t.alert_outbox.c.payload)).all()
    store.close()
    # every alert (episode, status, repeat) queued per channel, wherever grouping put it
    alerts = [
        (channel, Alert.from_json(a).id)
        for channel, payload in rows
        for a in json.loads(payload)["alerts"]
    ]
    return {int(k): float(v) for k, v in scores.items()}, anomalies, alerts


@pytest.mark.slow
def test_sigkill_inbox_exactly_once(tmp_path: Path, store_url: str) -> None:
    inbox = tmp_path / "inbox"
    total = _inbox(inbox)
    cfg = write_config(
        tmp_path / "rushhour.toml",
        store_url,
        [{"type": "inbox", "path": "inbox"}],
        detect=BY_DEFAULT,
    )
    _kill_and_restart(cfg, tmp_path, rounds=3, seed=len(store_url), url=store_url)
    stored, buckets, seen, _ = _db_state(store_url)
    assert stored == total, "a record was lost or counted twice"
    assert buckets == FILES * MINUTES
    assert seen == FILES
    assert list(inbox.iterdir()) == []
    assert len(list((tmp_path / "finished").iterdir())) == FILES

    reference = tmp_path / "reference"
    _inbox(reference / "inbox")
    _same_as_without_crash(store_url, None, reference)


def _same_as_without_crash(url: str, points: bytes | None, ref: Path) -> None:
    """Run the same input (``points``, or the inbox already under ``ref``) without a crash: the
    default detector's state survived every SIGKILL exactly (snapshots in the batch transaction,
    replay at start), so its scores and the anomalies are the same, each stored once, and no alert is
    queued twice; with the same batches (the inbox's files), the same alerts are queued (grouping
    into messages may differ after a crash: pending groups restored from the checkpoint take in the
    next batch's alerts).

    ``points`` (the NATS test) are run as one file: batch boundaries differ there, and alerts that
    arrive in one batch are grouped and held together, so the set of alerts is compared for the
    inbox only."""
    if points is not None:
        (ref / "inbox").mkdir(parents=True)
        (ref / "inbox" / "all.jsonl").write_bytes(points)
    ref_url = f"sqlite:///{ref / 'ref.db'}"
    ref_cfg = write_config(
        ref / "rushhour.toml", ref_url, [{"type": "inbox", "path": "inbox"}], detect=BY_DEFAULT
    )
    done = rushhour("run", "--config", str(ref_cfg), "--drain", "--json", cwd=ref, timeout=300)
    assert done.returncode == 0, done.stderr
    scores, anomalies, alerts = _detections(url)
    ref_scores, ref_anomalies, ref_alerts = _detections(ref_url)
    assert len(scores) == len(ref_scores) > 1000
    assert len(alerts) == len(set(alerts)), "an alert was queued twice"
    store = open_store(url)
    late = store.late_updates()
    store.close()
    # nothing arrives late after a restart: the NATS source reads what a killed run left ack
    # pending from the stream before anything newer (JetStream would redeliver it after ack_wait)
    assert late == 0, "a record came back after its bucket was scored"
    assert scores == pytest.approx(ref_scores, rel=1e-12, abs=1e-12)
    assert ref_anomalies, "no anomaly to compare"
    assert anomalies == ref_anomalies
    if points is None:
        assert set(alerts) == set(ref_alerts) and alerts


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
    """More messages than a run reads ahead (its queue holds 64 batches of 4), so every kill leaves
    messages fetched but uncommitted *and* newer ones never fetched: the restarted run must take the
    former first, or their buckets would be scored before they arrive."""
    stream = f"RH_TEST_{uuid.uuid4().hex[:8].upper()}"
    subject = f"rh.test.{stream.lower()}"
    messages, total = [], 0.0
    for i in range(480):
        lines = []
        for k in range(i * 10, i * 10 + 10):  # ten minutes a message
            value = (1 + (k // 40 + k % 40) % 7) * (40 if k % 800 == 405 else 1)  # a few spikes
            total += value
            lines.append(json.dumps({"series": "api", "time": START + k * 60, "value": value}))
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
    cfg = write_config(tmp_path / "rushhour.toml", url, [source], detect=BY_DEFAULT)
    try:
        outputs = _kill_and_restart(cfg, tmp_path, rounds=3, seed=7, url=url)
        stored, buckets, _, _ = _db_state(url)
        assert stored == total, "a record was lost or counted twice"
        assert buckets == 4800
        assert asyncio.run(_consumer_state(nats_url, stream, "rh")) == (0, 0), (
            "unacknowledged messages remain"
        )
        # a restart found messages a killed run had left behind, and read them back first
        assert any("held back by a stopped run" in out for out in outputs[1:])
        _same_as_without_crash(url, b"".join(messages), tmp_path / "reference")
    finally:
        asyncio.run(_drop_stream(nats_url, stream))


class _CommitFailsOnce(Store):
    """The real store, but one chosen transaction is rolled back at its end instead of committed,
    as a commit that fails (a locked or lost database) would leave it."""

    fail_next = False

    @contextmanager
    def begin(self) -> Iterator[Any]:
        if not self.fail_next:
            with super().begin() as conn:
                yield conn
            return
        self.fail_next = False
        with self.engine.connect() as conn:
            tx = conn.begin()
            yield conn
            tx.rollback()
        raise StoreError("store write failed: database is locked (at commit)")


def test_a_batch_whose_commit_fails_is_not_learned_twice(tmp_path: Path, store_url: str) -> None:
    def batches(n: int) -> list[Batch]:
        out = []
        for i in range(n):
            rows = [
                ("api", {}, float(START + (i * 120 + m) * 60), float(5 + (i * 120 + m) % 7))
                for m in range(120)
            ]
            out.append(Batch("test", PointBatch.from_rows(rows), label=f"b{i}"))
        return out

    def scores(processor: Processor) -> dict[int, float]:
        s = t.scores.c
        with processor.store.engine.connect() as conn:
            q = select(s.start, s.score).where(s.detector == "default")
            return {int(a): float(b) for a, b in conn.execute(q)}

    runs = []
    for failing in (False, True):
        url = store_url if failing else f"sqlite:///{tmp_path / 'ref.db'}"
        settings = load_settings(
            environ={}, overrides={"data_dir": str(tmp_path), "detect": BY_DEFAULT}
        )
        st = _CommitFailsOnce(open_store(url).engine)
        processor = Processor(settings, st, DetectorBank(settings), SystemClock())
        processor.restore()
        for i, batch in enumerate(batches(6)):
            if failing and i == 3:
                st.fail_next = True
                with pytest.raises(StoreError):
                    processor.process(batch)
            processor.process(batch)  # the retry (or the only try)
        runs.append(scores(processor))
        st.close()
    reference, retried = runs
    assert len(reference) > 600
    assert retried == pytest.approx(reference, rel=1e-12, abs=1e-12)
