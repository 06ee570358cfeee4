"""NATS JetStream: a durable pull consumer, the Kinesis replacement when producers are many.

Each message carries records in the source's format (points JSON lines by default). A fetched group of
messages is one batch. The set of committed stream sequences is part of the source's position and is
checked *inside* the commit transaction, message by message: a message redelivered while its first
delivery still waited in the queue, or one redelivered after a crash (JetStream holds unacknowledged
messages back for ``ack_wait`` while newer ones flow), is recognised and not counted again. Messages
are acknowledged only after their batch commits. The stream is created when missing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from rushhour.errors import InputError, ServiceUnavailable
from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.processor import Batch
from rushhour.pipeline.readers import read_points
from rushhour.pipeline.sources import register


@dataclass
class SeqSet:
    """Committed stream sequences: everything up to ``floor``, plus the sparse ones above it.

    >>> s = SeqSet.from_position(None).add([1, 2, 4])
    >>> s.floor, s.above, 3 in s, 4 in s
    (2, [4], False, True)
    >>> s.add([3]).to_position()
    {'floor': 4, 'above': []}
    """

    floor: int = 0
    above: list[int] = field(default_factory=list)

    @classmethod
    def from_position(cls, position: dict[str, Any] | None) -> SeqSet:
        position = position or {}
        return cls(
            int(position.get("floor", position.get("seq", 0))), sorted(position.get("above", []))
        )

    def __contains__(self, seq: int) -> bool:
        return seq <= self.floor or seq in self.above

    def add(self, seqs: list[int]) -> SeqSet:
        merged = sorted(set(self.above) | {s for s in seqs if s > self.floor})
        floor = self.floor
        while merged and merged[0] == floor + 1:
            floor = merged.pop(0)
        return SeqSet(floor, merged)

    def to_position(self) -> dict[str, Any]:
        return {"floor": self.floor, "above": self.above}


@register("nats")
class NatsSource:
    def __init__(self, spec: Any, **_: Any) -> None:
        self.spec = spec
        self.name = spec.source_name()
        self.finished = False
        self._nc: Any = None
        self._sub: Any = None
        self._js: Any = None
        self.rejected_messages = 0
        self.waiting = False

    async def open(self, position: dict[str, Any] | None) -> None:
        import nats
        from nats.js.api import ConsumerConfig
        from nats.js.errors import NotFoundError

        try:
            self._nc = await nats.connect(
                self.spec.url, connect_timeout=3, max_reconnect_attempts=3
            )
        except (OSError, TimeoutError, nats.errors.NoServersError) as exc:
            raise ServiceUnavailable(f"cannot reach NATS at {self.spec.url}: {exc}") from exc
        self._js = self._nc.jetstream()
        try:
            await self._js.stream_info(self.spec.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.spec.stream, subjects=[self.spec.subject])
        self._sub = await self._js.pull_subscribe(
            self.spec.subject,
            durable=self.spec.durable,
            stream=self.spec.stream,
            config=ConsumerConfig(ack_wait=self.spec.ack_wait),
        )

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()

    async def next_batch(self) -> Batch | None:
        import nats

        try:
            msgs = await self._sub.fetch(self.spec.fetch, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            # idle only when nothing waits either: messages a crashed run fetched but never
            # acknowledged come back after ack_wait, and a drain must wait for them
            info = await self._js.consumer_info(self.spec.stream, self.spec.durable)
            self.waiting = bool(info.num_pending or info.num_ack_pending)
            return None
        self.waiting = False
        parsed = [(m.metadata.sequence.stream, self._parse(m)) for m in msgs]
        seqs = [seq for seq, _ in parsed]

        def reconcile(stored: dict[str, Any] | None) -> tuple[PointBatch, dict[str, Any]]:
            committed = SeqSet.from_position(stored)
            fresh = [points for seq, points in parsed if seq not in committed]
            return concat(fresh), committed.add(seqs).to_position()

        async def ack() -> None:
            from nats.errors import MsgAlreadyAckdError

            for m in msgs:
                with contextlib.suppress(
                    MsgAlreadyAckdError
                ):  # acknowledged already: nothing to do
                    await m.ack()

        return Batch(
            source=self.name,
            points=concat([p for _, p in parsed]),
            after_commit=ack,
            reconcile=reconcile,
            label=f"seq {min(seqs)}-{max(seqs)}",
        )

    def _parse(self, m: Any) -> PointBatch:
        label = f"{self.spec.subject}#{m.metadata.sequence.stream}"
        fmt = "points" if self.spec.format == "auto" else self.spec.format
        try:
            return read_points(m.data, fmt, label, series=self.spec.series, labels=self.spec.labels)
        except InputError:
            # a message that is not readable at all is counted and dropped (it would never succeed)
            self.rejected_messages += 1
            return PointBatch.empty()


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
