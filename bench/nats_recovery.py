"""Benchmark: how fast a restarted NATS source reads back what a killed run left held back.

A run fetches N messages and dies without acknowledging them (its connection closes); a new source
opens on the same durable consumer and reads them back from the stream, one ``STREAM.MSG.GET`` per
message, before anything new. Peer in the same run, because the machine is shared and noisy: the
same N messages fetched normally (``fetch`` per pull request) by a fresh consumer. Both only read and
parse (no processing, no commit). Needs NATS JetStream at ``--url``.

    PYTHONPATH=src python bench/nats_recovery.py [--messages 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from rushhour.pipeline.sources.nats import NatsSource
from rushhour.pipeline.spec import NatsSpec

START = 1_772_409_600


async def _drain_source(src: NatsSource, held_back: bool) -> int:
    n = 0
    while (batch := await src.next_batch()) is not None:
        if held_back and "held back" not in batch.label:
            break
        n += len(batch.points) // 10
    return n


async def _timed(src: NatsSource, held_back: bool) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await src.open(None)
    n = await _drain_source(src, held_back)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await src.close()
    return n, wall, cpu


async def one_round(url: str, messages: int, fetch: int) -> dict[str, tuple[int, float, float]]:
    import nats

    stream = f"RH_RBENCH_{uuid.uuid4().hex[:8].upper()}"
    subject = f"rh.rbench.{stream.lower()}"
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    for i in range(messages):  # ten points a message
        lines = (
            json.dumps({"series": "api", "time": START + (i * 10 + m) * 60, "value": 1}) + "\n"
            for m in range(10)
        )
        await js.publish(subject, "".join(lines).encode())

    def spec(durable: str) -> Any:
        return NatsSpec(
            type="nats",
            url=url,
            stream=stream,
            subject=subject,
            durable=durable,
            fetch=fetch,
            ack_wait=600.0,
        )

    try:
        killed = NatsSource(spec("held"))
        await killed.open(None)
        got = 0
        while got < messages:
            batch = await killed.next_batch()
            got += len(batch.points) // 10 if batch is not None else 0
        await killed._nc.close()  # no acks: the messages stay ack pending, as after SIGKILL
        return {
            "read back (held back)": await _timed(NatsSource(spec("held")), held_back=True),
            "fetched (peer)": await _timed(NatsSource(spec("fresh")), held_back=False),
        }
    finally:
        await js.delete_stream(stream)
        await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="nats://127.0.0.1:4222")
    ap.add_argument(
        "--messages", type=int, default=1000, help="held back (default max_ack_pending)"
    )
    ap.add_argument("--fetch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for r in range(args.repeat):
        for name, (n, wall, cpu) in asyncio.run(
            one_round(args.url, args.messages, args.fetch)
        ).items():
            print(
                f"round {r + 1} {name:22s} {n} messages: {wall:.3f} s wall, {cpu:.3f} s CPU, "
                f"{n / wall:,.0f} messages/s, {cpu / n * 1e6:,.0f} us CPU a message"
            )


if __name__ == "__main__":
    main()
