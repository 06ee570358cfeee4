"""An in-process queue source: what HTTP push (``POST /ingest``) feeds.

``push`` waits until the points are committed, so a client that gets a success response knows its
points are durable.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rushhour.pipeline.points import PointBatch
from rushhour.pipeline.processor import Batch
from rushhour.pipeline.sources import register


@register("http")
class QueueSource:
    def __init__(self, spec: Any = None, **_: Any) -> None:
        self.name = spec.source_name() if spec is not None else "http"
        self.finished = False
        self._queue: asyncio.Queue[tuple[PointBatch, asyncio.Future[None]]] = asyncio.Queue(
            maxsize=256
        )

    async def open(self, position: dict[str, Any] | None) -> None:
        return None

    async def close(self) -> None:
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(
                    RuntimeError("the pipeline stopped before the points were committed")
                )

    async def push(self, points: PointBatch) -> None:
        """Enqueue points and wait until they are committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((points, fut))
        await fut

    async def next_batch(self) -> Batch | None:
        try:
            points, fut = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

        def done() -> None:
            if not fut.done():
                fut.set_result(None)

        return Batch(source=self.name, points=points, after_commit=done, label="push")
