"""NATS JetStream: a durable pull consumer, the Kinesis replacement when producers are many.

Each message carries records in the source's format (points JSON lines by default). A fetched group of
messages is one batch; its highest stream sequence is committed with its results, and the messages are
acknowledged only after that commit. After a crash, messages the store already holds (sequence at or
below the committed one) are acknowledged without being counted again. The stream is created when
missing.
"""

from __future__ import annotations

from typing import Any

from rushhour.errors import InputError, ServiceUnavailable
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.processor import Batch
from rushhour.pipeline.readers import read_points
from rushhour.pipeline.sources import register


@register("nats")
class NatsSource:
    def __init__(self, spec: Any, **_: Any) -> None:
        self.spec = spec
        self.name = spec.source_name()
        self.finished = False
        self.committed_seq = 0
        self._nc: Any = None
        self._sub: Any = None
        self.rejected_messages = 0
        self.waiting = False
        self._js: Any = None

    async def open(self, position: dict[str, Any] | None) -> None:
        import nats
        from nats.js.errors import NotFoundError

        self.committed_seq = int((position or {}).get("seq", 0))
        try:
            self._nc = await nats.connect(
                self.spec.url, connect_timeout=3, max_reconnect_attempts=3
            )
        except (OSError, TimeoutError, nats.errors.NoServersError) as exc:
            raise ServiceUnavailable(f"cannot reach NATS at {self.spec.url}: {exc}") from exc
        js = self._nc.jetstream()
        try:
            await js.stream_info(self.spec.stream)
        except NotFoundError:
            await js.add_stream(name=self.spec.stream, subjects=[self.spec.subject])
        self._sub = await js.pull_subscribe(
            self.spec.subject, durable=self.spec.durable, stream=self.spec.stream
        )

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()

    async def next_batch(self) -> Batch | None:
        import nats

        try:
            msgs = await self._sub.fetch(self.spec.fetch, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            return None
        fresh: list[Any] = []
        stale: list[Any] = []
        for m in msgs:
            (fresh if m.metadata.sequence.stream > self.committed_seq else stale).append(m)
        for m in stale:  # already committed before a crash: acknowledge, do not count again
            await m.ack()
        if not fresh:
            return None
        points = self._parse(fresh)
        top = max(m.metadata.sequence.stream for m in fresh)

        async def ack() -> None:
            self.committed_seq = max(self.committed_seq, top)
            for m in fresh:
                await m.ack()

        return Batch(
            source=self.name,
            points=points,
            position={"seq": top},
            after_commit=ack,
            label=f"seq {fresh[0].metadata.sequence.stream}-{top}",
        )

    def _parse(self, msgs: list[Any]) -> PointBatch:
        parts = []
        for m in msgs:
            label = f"{self.spec.subject}#{m.metadata.sequence.stream}"
            try:
                parts.append(
                    read_points(
                        m.data,
                        "points" if self.spec.format == "auto" else self.spec.format,
                        label,
                        series=self.spec.series,
                        labels=self.spec.labels,
                    )
                )
            except InputError:
                # a message that is not readable at all is counted and dropped (it would never succeed)
                self.rejected_messages += 1
        return concat(parts)


def concat(parts: list[PointBatch]) -> PointBatch:
    import numpy as np

    if not parts:
        return PointBatch.empty()
    out = PointBatch(
        [k for p in parts for k in p.keys],
        np.concatenate([p.times for p in parts]),
        np.concatenate([p.values for p in parts]),
    )
    for p in parts:
        out.labels.update(p.labels)
        out.rejected.update(p.rejected)
        out.examples.extend(p.examples[: max(0, 5 - len(out.examples))])
    return out
