"""The delivery worker: drains the outbox through the configured channels.

Synchronous, with an injected clock: tests drive time with :class:`rushhour.testing.FakeClock`.
Each row is marked ``sending`` before its request (see :mod:`rushhour.notify.outbox`). A failed
delivery never raises out of the worker; it is recorded (with the secret-free message the channel
gave) and retried later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rushhour.notify.outbox import Outbox
from rushhour.notify.registry import Channel, ChannelError
from rushhour.pipeline.clock import Clock


@dataclass
class WorkerStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0

    def add(self, other: WorkerStats) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead


class DeliveryWorker:
    """Claims due rows, delivers each, records the outcome."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        clock: Clock,
        *,
        batch: int = 20,
        on_result: Callable[[str, str, str | None], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.channels = dict(channels)
        self.clock = clock
        self.batch = batch
        self.on_result = on_result
        self.stopping = False

    def run_once(self) -> WorkerStats:
        """One pass over the rows due now."""
        stats = WorkerStats()
        for item in self.outbox.claim(self.clock.wall(), self.batch):
            channel = self.channels.get(item.channel)
            try:
                if channel is None:
                    raise ChannelError(f"channel {item.channel!r} is not configured")
                self.outbox.sending(item, self.clock.wall())
                channel.deliver(item.delivery)
            except ChannelError as exc:
                delay = self.outbox.failed(item, exc, self.clock.wall())
                if delay is None:
                    stats.dead += 1
                else:
                    stats.failed += 1
                self._report(item.delivery.key, "dead" if delay is None else "retry", exc.message)
                continue
            self.outbox.done(item, self.clock.wall())
            stats.sent += 1
            self._report(item.delivery.key, "sent", None)
        return stats

    def _report(self, key: str, outcome: str, message: str | None) -> None:
        if self.on_result is not None:
            self.on_result(key, outcome, message)

    def run(
        self,
        *,
        duration: float | None = None,
        until_idle: bool = False,
        poll: float = 1.0,
    ) -> WorkerStats:
        """Deliver until stopped, ``duration`` seconds pass, or (``until_idle``) nothing is pending."""
        total = WorkerStats()
        t0 = self.clock.monotonic()
        while not self.stopping:
            total.add(self.run_once())
            counts = self.outbox.counts() if until_idle else {}
            if until_idle and counts["pending"] + counts["sending"] == 0:
                break
            elapsed = self.clock.monotonic() - t0
            if duration is not None and elapsed >= duration:
                break
            nxt = self.outbox.next_due()
            wait = poll if nxt is None else min(poll, max(nxt - self.clock.wall(), 0.0))
            if duration is not None:
                wait = min(wait, duration - elapsed)
            self.clock.sleep(max(wait, 0.01))
        return total

    def stop(self) -> None:
        self.stopping = True
