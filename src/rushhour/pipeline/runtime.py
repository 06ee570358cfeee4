"""The asyncio runtime: sources -> bounded queue -> processor, with retraining on a schedule.

Each source is pumped by its own task into one bounded queue; when processing falls behind, the queue
fills and the pumps wait (back-pressure). One consumer processes batches in order, in a worker thread
so the loop stays responsive, and runs each batch's after-commit action (ack, file move) once the
batch is durable. Stopping (Ctrl-C, SIGTERM, ``--for``) stops the pumps, finishes the batches already
read, and closes the sources.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rushhour.pipeline.clock import Clock
from rushhour.pipeline.processor import Batch, Outcome, Processor
from rushhour.pipeline.sources import Source

IDLE_SLEEP = 0.05


@dataclass
class Stats:
    """Counters of one run (also what /metrics exports)."""

    batches: int = 0
    points: int = 0
    duplicates: int = 0
    #: messages a stopped run had left uncommitted, read back at start (NATS)
    recovered: int = 0
    closed: int = 0
    late_records: int = 0
    anomalies: int = 0
    flagged: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    close_latency: list[float] = field(default_factory=list)
    process_seconds: float = 0.0
    retrains: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, o: Outcome, seconds: float) -> None:
        self.batches += 1
        self.points += o.points
        self.duplicates += int(o.duplicate)
        self.recovered += o.recovered
        self.closed += o.closed
        self.late_records += o.late_records
        self.anomalies += o.anomalies
        self.flagged += o.flagged
        for k, v in o.rejected.items():
            self.rejected[k] = self.rejected.get(k, 0) + v
        self.close_latency.extend(o.close_latency[-1000:])
        del self.close_latency[:-10_000]
        self.process_seconds += seconds


Retrain = Callable[[], Any]


class Runtime:
    def __init__(
        self,
        processor: Processor,
        sources: Sequence[Source],
        clock: Clock,
        *,
        queue_size: int = 64,
        retrain: Retrain | None = None,
        next_retrain: Callable[[datetime], datetime | None] | None = None,
        on_outcome: Callable[[Batch, Outcome], None] | None = None,
        delivery: Any = None,
    ) -> None:
        self.processor = processor
        self.sources = list(sources)
        self.clock = clock
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=queue_size)
        self.retrain = retrain
        self.next_retrain = next_retrain
        self.on_outcome = on_outcome
        self.delivery = delivery  # a rushhour.notify DeliveryWorker draining the alert outbox
        self.stats = Stats()
        self.stopping = asyncio.Event()
        self._busy = False
        self._prepared = False

    def stop(self) -> None:
        self.stopping.set()

    def prepare(self) -> None:
        """Resume from the store and warm the detectors (compiling their kernels on a first run),
        once: a host that serves beside the runtime calls this before it answers, so the first
        request does not wait for it."""
        if not self._prepared:
            self.processor.restore()
            self._prepared = True

    async def run(self, duration: float | None = None, until_idle: bool = False) -> Stats:
        """Run until stopped, ``duration`` seconds pass, or (``until_idle``) every source is finished
        or idle and the queue is empty."""
        self.prepare()
        for src in self.sources:
            await src.open(self.processor.source_position(src.name))
        pumps = [asyncio.create_task(self._pump(src)) for src in self.sources]
        consumer = asyncio.create_task(self._consume())
        scheduler = (
            asyncio.create_task(self._schedule()) if self.retrain and self.next_retrain else None
        )
        deliver = asyncio.create_task(self._deliver()) if self.delivery is not None else None
        started = self.clock.monotonic()
        try:
            while not self.stopping.is_set():
                if duration is not None and self.clock.monotonic() - started >= duration:
                    break
                if until_idle and self._idle():
                    break
                await asyncio.sleep(IDLE_SLEEP)
        finally:
            self.stopping.set()
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            await self.queue.join()
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            if scheduler:
                scheduler.cancel()
                await asyncio.gather(scheduler, return_exceptions=True)
            if deliver:
                deliver.cancel()
                await asyncio.gather(deliver, return_exceptions=True)
                await asyncio.to_thread(
                    self.delivery.run_once
                )  # what is due now goes out before exit
            for src in self.sources:
                await src.close()
            self._prepared = False  # a later run resumes from the store again
        return self.stats

    def _idle(self) -> bool:
        sources_done = all(
            getattr(s, "finished", False)
            or (getattr(s, "_idle", False) and not getattr(s, "waiting", False))
            for s in self.sources
        )
        return self.queue.empty() and not self._busy and sources_done

    async def _pump(self, src: Source) -> None:
        while not self.stopping.is_set():
            batch = await src.next_batch()
            if batch is None:
                src._idle = True  # type: ignore[attr-defined]
                if src.finished:
                    return
                await asyncio.sleep(
                    getattr(getattr(src, "spec", None), "poll", IDLE_SLEEP) or IDLE_SLEEP
                )
                continue
            src._idle = False  # type: ignore[attr-defined]
            await self.queue.put(batch)

    async def _consume(self) -> None:
        while True:
            batch = await self.queue.get()
            self._busy = True
            try:
                started = time.perf_counter()
                outcome = await asyncio.to_thread(self.processor.process, batch)
                self.stats.add(outcome, time.perf_counter() - started)
                if batch.after_commit is not None:
                    result = batch.after_commit()
                    if inspect.isawaitable(result):
                        await result
                if self.on_outcome:
                    self.on_outcome(batch, outcome)
                # the forests learn the batch's buckets now that they are committed and acked
                await asyncio.to_thread(self.processor.settle)
            except Exception as exc:  # a batch that cannot be processed stops the run loudly
                self.stats.errors.append(f"{batch.source} {batch.label}: {exc}")
                self.stopping.set()
                raise
            finally:
                self._busy = False
                self.queue.task_done()

    async def _deliver(self) -> None:
        """Drain the alert outbox in a worker thread, so a slow channel never stalls processing."""
        while True:
            await asyncio.to_thread(self.delivery.run_once)
            await asyncio.sleep(0.2)

    async def _schedule(self) -> None:
        assert self.retrain is not None and self.next_retrain is not None
        while not self.stopping.is_set():
            now = datetime.fromtimestamp(self.clock.wall()).astimezone()
            due = self.next_retrain(now)
            if due is None:
                return
            while self.clock.wall() < due.timestamp() and not self.stopping.is_set():
                await asyncio.sleep(min(1.0, max(due.timestamp() - self.clock.wall(), IDLE_SLEEP)))
            if self.stopping.is_set():
                return
            models = await asyncio.to_thread(self.retrain)
            self.processor.bank.swap(models)  # hot swap between batches
            self.stats.retrains += 1
