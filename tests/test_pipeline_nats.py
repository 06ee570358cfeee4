"""NATS JetStream source: redeliveries are recognised per message inside the commit transaction."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

from rushhour.pipeline.clock import SystemClock
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.processor import Batch, Processor
from rushhour.pipeline.sources.nats import NatsSource, SeqSet
from rushhour.pipeline.spec import NatsSpec
from rushhour.settings import load_settings
from rushhour.store import open_store
from tests.test_pipeline_crash import _drop_stream, _publish

START = 1_772_409_600


def _processor_and_spec(
    tmp_path: Path, nats_url: str, stream: str, subject: str, ack_wait: float
) -> tuple[Processor, NatsSpec]:
    """A restored processor on a fresh SQLite store, and a durable consumer's spec (4 a fetch)."""
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    processor = Processor(
        settings, open_store(settings.store_url()), DetectorBank(settings), SystemClock()
    )
    processor.restore()
    spec = NatsSpec(
        type="nats",
        url=nats_url,
        stream=stream,
        subject=subject,
        durable="d",
        fetch=4,
        ack_wait=ack_wait,
    )
    return processor, spec


def test_seqset_tracks_out_of_order_commits() -> None:
    s = SeqSet.from_position(None).add([5, 6])
    assert s.floor == 0 and 1 not in s and 5 in s
    s = s.add([1, 2, 3, 4])
    assert s.to_position() == {"floor": 6, "above": []}
    assert SeqSet.from_position({"seq": 9}).floor == 9  # positions written before the seq set


def test_redelivered_while_queued_and_out_of_order_counted_once(
    tmp_path: Path, nats_url: str
) -> None:
    stream = f"RH_REDELIVER_{uuid.uuid4().hex[:8].upper()}"
    subject = f"rh.redeliver.{stream.lower()}"
    msgs = [
        (json.dumps({"series": "api", "time": START + i * 60, "value": i + 1}) + "\n").encode()
        for i in range(8)
    ]
    asyncio.run(_publish(nats_url, stream, subject, msgs))
    processor, spec = _processor_and_spec(tmp_path, nats_url, stream, subject, 1.0)
    store = processor.store

    async def scenario() -> None:
        src = NatsSource(spec)
        await src.open(None)
        first = await src.next_batch()  # seq 1-4, not acknowledged yet
        await asyncio.sleep(1.5)  # ack_wait passes: 1-4 are delivered again
        again = await src.next_batch()
        later = await src.next_batch()
        assert first is not None and again is not None and later is not None
        # commit the newer messages before the first batch: out of order, as after a crash
        for batch in (later, first, again):
            processor.process(batch)
            if batch.after_commit:
                await batch.after_commit()
        await src.close()

    try:
        asyncio.run(scenario())
        ref = store.all_series()[0]
        assert store.read_buckets(ref.id).sum() == sum(range(1, 9))  # each message counted once
        assert len(store.read_buckets(ref.id)) == 8
    finally:
        store.close()
        asyncio.run(_drop_stream(nats_url, stream))


def _point(i: int) -> bytes:
    """Message ``i`` (stream sequence i + 1): one point in minute i, value i + 1."""
    return (json.dumps({"series": "api", "time": START + i * 60, "value": i + 1}) + "\n").encode()


async def _publish_more(url: str, subject: str, messages: list[bytes]) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    for m in messages:
        await js.publish(subject, m)
    await nc.drain()


async def _delete(url: str, stream: str, seqs: list[int]) -> None:
    import nats

    nc = await nats.connect(url)
    for seq in seqs:
        await nc.jetstream().delete_msg(stream, seq)
    await nc.drain()


def test_held_back_messages_come_first_in_order_without_waiting_for_ack_wait(
    tmp_path: Path, nats_url: str
) -> None:
    """A killed run fetched 5-12 and committed 5-8, but died before acknowledging them and before
    committing 9-12. JetStream would redeliver 5-12 only after ack_wait (ten minutes here), behind
    13-16: the next run reads the uncommitted ones from the stream first, in order, skipping one
    deleted meanwhile, then goes on with 13-16; nothing arrives late."""
    stream = f"RH_HELD_{uuid.uuid4().hex[:8].upper()}"
    subject = f"rh.held.{stream.lower()}"
    asyncio.run(_publish(nats_url, stream, subject, [_point(i) for i in range(12)]))
    processor, spec = _processor_and_spec(tmp_path, nats_url, stream, subject, 600.0)
    store = processor.store

    async def killed_run() -> None:
        src = NatsSource(spec)
        await src.open(processor.source_position(src.name))
        done = await src.next_batch()  # 1-4: committed and acknowledged
        unacked = await src.next_batch()  # 5-8: committed, the process died before the acks
        lost = await src.next_batch()  # 9-12: fetched only
        assert done is not None and lost is not None and unacked is not None
        processor.process(done)
        assert done.after_commit is not None
        await done.after_commit()
        processor.process(unacked)
        await src._nc.close()  # no drain, no acks: as SIGKILL leaves it

    async def next_run() -> list[tuple[Batch, int]]:
        src = NatsSource(spec)
        await src.open(processor.source_position(src.name))
        out = []
        started = time.monotonic()
        while (batch := await src.next_batch()) is not None:
            outcome = processor.process(batch)
            if batch.after_commit:
                await batch.after_commit()
            out.append((batch, outcome.recovered))
        assert time.monotonic() - started < 30  # far from ack_wait: nothing came by redelivery
        assert src.waiting, "a drain must still wait for the redeliveries to acknowledge them"
        await src.close()
        return out

    try:
        asyncio.run(killed_run())
        asyncio.run(_publish_more(nats_url, subject, [_point(i) for i in range(12, 16)]))
        asyncio.run(_delete(nats_url, stream, [10]))  # seq 10 (value 10) is gone from the stream
        batches = asyncio.run(next_run())
        values = [batch.points.values.tolist() for batch, _ in batches]
        assert values == [[9.0, 11.0, 12.0], [13.0, 14.0, 15.0, 16.0]]
        assert [recovered for _, recovered in batches] == [3, 0]
        ref = store.all_series()[0]
        assert store.read_buckets(ref.id).sum() == sum(range(1, 17)) - 10
        assert store.late_updates() == 0, "a held-back message arrived after its bucket closed"
        assert processor.source_position(f"nats:{subject}") == {"floor": 16, "above": []}
    finally:
        store.close()
        asyncio.run(_drop_stream(nats_url, stream))


def test_held_back_range_across_other_subjects_advances_the_committed_floor(
    tmp_path: Path, nats_url: str
) -> None:
    """A stream shared with another subject: the consumer's messages are every other sequence. The
    held-back ones are found across the others, and the committed floor passes the others (the
    consumer's ack floor and the skipped sequences), so the position stays small."""
    import nats

    stream = f"RH_MULTI_{uuid.uuid4().hex[:8].upper()}"
    ours, other = f"rh.multi.{stream.lower()}.points", f"rh.multi.{stream.lower()}.other"

    async def publish() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"rh.multi.{stream.lower()}.>"])
        for i in range(8):  # ours at odd sequences 1, 3, ..., 15
            await js.publish(ours, _point(i))
            await js.publish(other, b"not for this source")
        await nc.drain()

    asyncio.run(publish())
    processor, spec = _processor_and_spec(tmp_path, nats_url, stream, ours, 600.0)
    store = processor.store

    async def killed_run() -> None:
        src = NatsSource(spec)
        await src.open(None)
        done, lost = await src.next_batch(), await src.next_batch()  # 1-7 committed, 9-15 not
        assert done is not None and lost is not None and done.after_commit is not None
        processor.process(done)
        await done.after_commit()
        await src._nc.close()

    async def next_run() -> list[list[float]]:
        src = NatsSource(spec)
        await src.open(processor.source_position(src.name))
        out = []
        while (batch := await src.next_batch()) is not None:
            processor.process(batch)
            out.append(batch.points.values.tolist())
        await src.close()
        return out

    try:
        asyncio.run(killed_run())
        assert asyncio.run(next_run()) == [[5.0, 6.0, 7.0, 8.0]]
        assert processor.source_position(f"nats:{ours}") == {"floor": 15, "above": []}
        assert store.read_buckets(store.all_series()[0].id).sum() == sum(range(1, 9))
    finally:
        store.close()
        asyncio.run(_drop_stream(nats_url, stream))
