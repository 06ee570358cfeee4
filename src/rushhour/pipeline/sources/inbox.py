"""The inbox: the seed's S3-upload trigger, on a local folder or an S3-compatible bucket.

A file dropped into ``inbox/`` is read, processed, and once its results are committed moved to
``finished/`` (beside ``inbox/``), renamed with its processing time. A file that cannot be read goes to
``failed/`` with a ``.error`` file beside it saying why. Each file's content hash is committed with its
results, so a file seen again (re-dropped, or left behind by a crash after the commit) is not counted
twice. Write files atomically (write elsewhere or as ``*.tmp``, then rename into ``inbox/``).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from rushhour.errors import InputError
from rushhour.pipeline.processor import Batch
from rushhour.pipeline.readers import read_points, read_points_file
from rushhour.pipeline.sources import register
from rushhour.pipeline.sources.folders import Folder, LocalFolder, S3Folder


class InboxSource:
    def __init__(self, spec: Any, folder: Folder) -> None:
        self.spec = spec
        self.folder = folder
        self.name = spec.source_name()
        self.finished = False
        self._in_flight: set[str] = set()

    async def open(self, position: dict[str, Any] | None) -> None:
        await asyncio.to_thread(self.folder.prepare)

    async def close(self) -> None:
        return None

    async def next_batch(self) -> Batch | None:
        for name in await asyncio.to_thread(self.folder.list):
            if name in self._in_flight:
                continue
            batch = await asyncio.to_thread(self._read, name)
            if batch is not None:
                self._in_flight.add(name)
                return batch
        return None

    def _read(self, name: str) -> Batch | None:
        try:
            path = self.folder.local_path(name)
            if path is not None:  # a local file: stream it (flow logs can be gigabytes)
                digest = _sha256(path)
                points = read_points_file(
                    path, self.spec.format, name, series=self.spec.series, labels=self.spec.labels
                )
            else:
                data = self.folder.read(name)
                if data is None:
                    return None
                digest = hashlib.sha256(data).hexdigest()
                points = read_points(
                    data, self.spec.format, name, series=self.spec.series, labels=self.spec.labels
                )
        except FileNotFoundError:
            return None
        except (InputError, OSError) as exc:
            self._fail(name, exc)
            return None
        if len(points) == 0 and points.rejected:
            reasons = ", ".join(f"{n} {why}" for why, n in points.rejected.most_common())
            examples = "; ".join(points.examples[:3])
            self._fail(
                name,
                InputError(
                    f"no readable records ({reasons}); e.g. {examples}",
                    source=name,
                    hint="check the file's format against the source's `format` setting",
                ),
            )
            return None

        def done() -> None:
            self._in_flight.discard(name)
            self.folder.move(name, "finished", _stamped(name))

        return Batch(
            source=self.name, points=points, dedupe=f"file:{digest}", after_commit=done, label=name
        )

    def _fail(self, name: str, exc: Exception) -> None:
        target = _stamped(name)
        if self.folder.move(name, "failed", target) is not None:
            message = exc.message if isinstance(exc, InputError) else str(exc)
            hint = getattr(exc, "hint", "")
            self.folder.write("failed", target + ".error", f"{message}\n{hint}".strip() + "\n")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(4 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stamped(name: str) -> str:
    """``traffic.csv`` -> ``traffic.20260302T081503123456Z.csv``: renamed with the processing time."""
    p = PurePath(name)
    return f"{p.stem}.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}{p.suffix}"


@register("inbox")
def inbox_source(spec: Any, *, base: Path | None = None, **_: Any) -> InboxSource:
    root = Path(spec.path)
    return InboxSource(
        spec, LocalFolder(root if root.is_absolute() or base is None else base / root)
    )


@register("s3")
def s3_source(spec: Any, **_: Any) -> InboxSource:
    return InboxSource(spec, S3Folder(spec.bucket_name, spec.prefix, spec.endpoint_url))
