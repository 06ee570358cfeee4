"""NATS JetStream source: redeliveries are recognised per message inside the commit transaction."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from rushhour.pipeline.clock import SystemClock
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.processor import Processor
from rushhour.pipeline.sources.nats import NatsSource, SeqSet
from rushhour.pipeline.spec import NatsSpec
from rushhour.settings import load_settings
from rushhour.store import open_store
from tests.test_pipeline_crash import _drop_stream, _publish

START = 1_772_409_600


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
    settings = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    store = open_store(settings.store_url())
    processor = Processor(settings, store, DetectorBank(settings), SystemClock())
    processor.restore()
    spec = NatsSpec(
        type="nats",
        url=nats_url,
        stream=stream,
        subject=subject,
        durable="d",
        fetch=4,
        ack_wait=1.0,
    )

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
