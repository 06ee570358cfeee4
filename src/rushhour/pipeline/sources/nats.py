"""NATS JetStream: a durable pull consumer, the Kinesis replacement when producers are many.

Each message carries records in the source's format (points JSON lines by default). A fetched group of
messages is one batch. The set of committed stream sequences is part of the source's position and is
checked *inside* the commit transaction, message by message: a message redelivered while its first
delivery still waited in the queue, or one redelivered after a crash, is recognised and not counted
again. Messages are acknowledged only after their batch commits. The stream is created when missing.

Restart after a crash: the messages the killed run had fetched but not committed stay "ack pending"
on the durable consumer, and JetStream redelivers them only after ``ack_wait``, behind newer ones: their
buckets would arrive late, after the detectors scored them. So ``open()`` first reads the consumer's
state, and when messages are ack pending it reads the uncommitted ones between the committed floor and
the consumer's last delivered sequence straight from the stream (``STREAM.MSG.GET``, next message on
the consumer's filter subject: deleted or expired sequences are skipped), in sequence order, and emits
them as batches before fetching anything new. Their redeliveries, later, find them committed and are
only acknowledged. The run's ``recovered`` counter says how many messages were read back this way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
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

    def with_floor(self, floor: int) -> SeqSet:
        """Everything up to ``floor`` committed too.

        >>> SeqSet(2, [5, 7]).with_floor(4).to_position()
        {'floor': 5, 'above': [7]}
        """
        if floor <= self.floor:
            return self
        return SeqSet(floor, [s for s in self.above if s > floor]).add([])

    def next_missing(self, seq: int) -> int:
        """The first sequence at or after ``seq`` not committed.

        >>> SeqSet(3, [5, 6, 9]).next_missing(2), SeqSet(3, [5, 6, 9]).next_missing(5)
        (4, 7)
        """
        seq = max(seq, self.floor + 1)
        above = set(self.above)
        while seq in above:
            seq += 1
        return seq

    def to_position(self) -> dict[str, Any]:
        return {"floor": self.floor, "above": self.above}


@dataclass
class HeldBack:
    """Messages a previous run was delivered but never committed: stream sequences ``next`` to
    ``last`` on ``subject`` (the consumer's filter), less those ``committed`` at start."""

    next: int
    last: int
    subject: str
    committed: SeqSet


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
        self._held: HeldBack | None = None
        # the consumer's ack floor (stream sequence) when last read: a message is acknowledged only
        # after it commits, so everything up to it is committed, including sequences the consumer
        # skips (another subject, deleted), which the committed floor could otherwise never pass
        self._acked = 0

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
        self._held = await self._held_back(SeqSet.from_position(position))

    async def _held_back(self, committed: SeqSet) -> HeldBack | None:
        """What a killed run left ack pending and uncommitted, if anything. Acknowledged messages
        were committed first, so the range starts above both the committed and the ack floor."""
        info = await self._js.consumer_info(self.spec.stream, self.spec.durable)
        self._note_ack_floor(info)
        if not info.num_ack_pending or info.delivered is None:
            return None
        committed = committed.with_floor(self._acked)
        first, last = committed.next_missing(1), int(info.delivered.stream_seq)
        if first > last:
            return None
        return HeldBack(first, last, info.config.filter_subject or self.spec.subject, committed)

    def _note_ack_floor(self, info: Any) -> None:
        if info.ack_floor is not None:
            self._acked = max(self._acked, int(info.ack_floor.stream_seq or 0))

    async def close(self) -> None:
        import nats

        if self._nc is not None:
            # the acks are published already: make sure the server has them, then close (a drain
            # can wait 30 s for the expiry notice of a pull request that nobody reads any more)
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self._nc.flush(timeout=5)
            await self._nc.close()

    async def next_batch(self) -> Batch | None:
        if self._held is not None:
            batch = await self._next_held_back()
            if batch is not None:
                return batch
            self._held = None
        return await self._fetch()

    async def _next_held_back(self) -> Batch | None:
        """Up to ``fetch`` held-back messages, in stream order, read from the stream itself. The
        sequences skipped on the way (deleted, expired, or on another subject) commit with them:
        the consumer never delivers those, and the committed floor must not stop at them."""
        from nats.js.errors import NotFoundError

        held = self._held
        assert held is not None
        parsed: list[tuple[int, PointBatch]] = []
        gaps: list[int] = []
        while len(parsed) < self.spec.fetch and held.next <= held.last:
            try:  # the first message on the subject at or after held.next
                msg = await self._js.get_msg(
                    self.spec.stream, seq=held.next, subject=held.subject, next=True
                )
                seq = int(msg.seq or 0)
            except NotFoundError:  # nothing left on the subject (deleted, limits)
                seq = held.last + 1
            if seq < held.next:
                raise ServiceUnavailable(
                    f"NATS answered sequence {seq} for the next message from {held.next} "
                    f"in stream {self.spec.stream}"
                )
            gaps += [
                g for g in range(held.next, min(seq, held.last + 1)) if g not in held.committed
            ]
            if seq > held.last:
                held.next = seq
                break
            held.next = held.committed.next_missing(seq + 1)
            if seq not in held.committed:
                parsed.append((seq, self._parse(seq, msg.data or b"")))
        if not parsed and not gaps:
            return None
        return self._batch(parsed, None, recovered=True, gaps=gaps)

    async def _fetch(self) -> Batch | None:
        import nats

        try:
            msgs = await self._sub.fetch(self.spec.fetch, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            # idle only when nothing waits either: messages a stopped run fetched are redelivered
            # after ack_wait (read back and committed at start, they are only acknowledged then),
            # and a drain waits for them
            info = await self._js.consumer_info(self.spec.stream, self.spec.durable)
            self._note_ack_floor(info)
            self.waiting = bool(info.num_pending or info.num_ack_pending)
            return None
        self.waiting = False
        parsed = [
            (m.metadata.sequence.stream, self._parse(m.metadata.sequence.stream, m.data))
            for m in msgs
        ]

        async def ack() -> None:
            from nats.errors import MsgAlreadyAckdError

            for m in msgs:
                with contextlib.suppress(MsgAlreadyAckdError):  # acknowledged already
                    await m.ack()

        return self._batch(parsed, ack, recovered=False)

    def _batch(
        self,
        parsed: list[tuple[int, PointBatch]],
        ack: Callable[[], Awaitable[None]] | None,
        *,
        recovered: bool,
        gaps: list[int] | None = None,
    ) -> Batch:
        """One batch of messages, deduplicated per message against the committed sequences inside
        the commit transaction; ``ack`` runs once it is durable. ``gaps``: sequences without a
        message for this source, committed with the batch."""
        seqs = [seq for seq, _ in parsed] + list(gaps or ())
        acked = self._acked
        batch = Batch(
            source=self.name,
            points=concat([p for _, p in parsed]),
            after_commit=ack,
            label=f"seq {min(seqs)}-{max(seqs)}"
            + (" held back by a stopped run" if recovered else ""),
        )

        def reconcile(stored: dict[str, Any] | None) -> tuple[PointBatch, dict[str, Any]]:
            committed = SeqSet.from_position(stored).with_floor(acked)
            fresh = [(seq, p) for seq, p in parsed if seq not in committed]
            if recovered:
                batch.recovered = len(fresh)
            return concat([p for _, p in fresh]), committed.add(seqs).to_position()

        batch.reconcile = reconcile
        return batch

    def _parse(self, seq: int, data: bytes) -> PointBatch:
        label = f"{self.spec.subject}#{seq}"
        fmt = "points" if self.spec.format == "auto" else self.spec.format
        try:
            return read_points(data, fmt, label, series=self.spec.series, labels=self.spec.labels)
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
