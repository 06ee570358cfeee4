"""stdin, and ``tail -f`` of a growing file. Both read complete lines of points (JSON lines).

The tail source commits its byte offset with each batch, so a restart resumes after the last line
whose results were committed. stdin cannot be re-read, so it offers no such guarantee.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from rushhour.pipeline.processor import Batch
from rushhour.pipeline.readers import read_points
from rushhour.pipeline.sources import register

MAX_CHUNK = 4 << 20


def _fmt(spec: Any) -> str:
    return "points" if spec.format == "auto" else spec.format


@register("tail")
class TailSource:
    def __init__(self, spec: Any, *, base: Path | None = None, **_: Any) -> None:
        self.spec = spec
        path = Path(spec.path)
        self.path = path if path.is_absolute() or base is None else base / path
        self.name = spec.source_name()
        self.finished = False
        self.offset = 0

    async def open(self, position: dict[str, Any] | None) -> None:
        self.offset = int((position or {}).get("offset", 0))

    async def close(self) -> None:
        return None

    def _read(self) -> tuple[bytes, int] | None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        if size < self.offset:  # truncated or rotated: start again from the top
            self.offset = 0
        if size == self.offset:
            return None
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read(MAX_CHUNK)
        cut = data.rfind(b"\n")
        if cut < 0:
            return None  # no complete line yet
        return data[: cut + 1], self.offset + cut + 1

    async def next_batch(self) -> Batch | None:
        got = await asyncio.to_thread(self._read)
        if got is None:
            return None
        data, end = got
        start = self.offset
        points = read_points(
            data,
            _fmt(self.spec),
            str(self.path.name),
            series=self.spec.series,
            labels=self.spec.labels,
        )
        self.offset = end
        return Batch(
            source=self.name,
            points=points,
            position={"offset": end},
            dedupe=f"tail:{self.path.name}:{start}-{end}",
            label=f"bytes {start}-{end}",
        )


@register("stdin")
class StdinSource:
    def __init__(self, spec: Any, *, stream: Any = None, **_: Any) -> None:
        self.spec = spec
        self.name = spec.source_name()
        self.finished = False
        self.stream = stream or sys.stdin.buffer

    async def open(self, position: dict[str, Any] | None) -> None:
        return None

    async def close(self) -> None:
        return None

    def _lines(self) -> bytes:
        lines = []
        for _ in range(10_000):
            line = self.stream.readline()
            if not line:
                self.finished = True
                break
            lines.append(line)
        return b"".join(lines)

    async def next_batch(self) -> Batch | None:
        if self.finished:
            return None
        data = await asyncio.to_thread(self._lines)
        if not data:
            return None
        points = read_points(
            data, _fmt(self.spec), "stdin", series=self.spec.series, labels=self.spec.labels
        )
        return Batch(source=self.name, points=points, label="stdin")
