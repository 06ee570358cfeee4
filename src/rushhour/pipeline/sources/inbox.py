"""The inbox folder: the seed's S3-upload trigger, on a local folder.

A file dropped into ``inbox/`` is read, processed, and once its results are committed moved to
``finished/`` (beside ``inbox/``), renamed with its processing time. A file that cannot be read goes to
``failed/`` with a ``.error`` file beside it saying why. Each file's content hash is committed with its
results, so a file seen again (re-dropped, or left behind by a crash after the commit) is not counted
twice. Write files atomically (write elsewhere or as ``*.tmp``, then rename into ``inbox/``).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rushhour.errors import InputError
from rushhour.pipeline.processor import Batch
from rushhour.pipeline.readers import read_points
from rushhour.pipeline.sources import register

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload")


@register("inbox")
class InboxSource:
    def __init__(self, spec: Any, *, base: Path | None = None, **_: Any) -> None:
        self.spec = spec
        root = Path(spec.path)
        self.inbox = root if root.is_absolute() or base is None else base / root
        self.finished_dir = self.inbox.parent / "finished"
        self.failed_dir = self.inbox.parent / "failed"
        self.name = spec.source_name()
        self.finished = False
        self._in_flight: set[str] = set()

    async def open(self, position: dict[str, Any] | None) -> None:
        for d in (self.inbox, self.finished_dir, self.failed_dir):
            d.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def _candidates(self) -> list[Path]:
        files = [
            p
            for p in self.inbox.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(IGNORED_SUFFIXES)
        ]
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    async def next_batch(self) -> Batch | None:
        for path in await asyncio.to_thread(self._candidates):
            if path.name in self._in_flight:
                continue
            batch = await asyncio.to_thread(self._read, path)
            if batch is not None:
                self._in_flight.add(path.name)
                return batch
        return None

    def _read(self, path: Path) -> Batch | None:
        try:
            data = path.read_bytes()
            points = read_points(
                data,
                self.spec.format,
                str(path.name),
                series=self.spec.series,
                labels=self.spec.labels,
            )
        except FileNotFoundError:
            return None
        except (InputError, OSError) as exc:
            self._fail(path, exc)
            return None
        if len(points) == 0 and points.rejected:
            reasons = ", ".join(f"{n} {why}" for why, n in points.rejected.most_common())
            examples = "; ".join(points.examples[:3])
            self._fail(
                path,
                InputError(
                    f"no readable records ({reasons}); e.g. {examples}",
                    source=path.name,
                    hint="check the file's format against the source's `format` setting",
                ),
            )
            return None
        digest = hashlib.sha256(data).hexdigest()

        def done() -> None:
            self._in_flight.discard(path.name)
            self._move(path, self.finished_dir)

        return Batch(
            source=self.name,
            points=points,
            dedupe=f"file:{digest}",
            after_commit=done,
            label=path.name,
        )

    def _fail(self, path: Path, exc: Exception) -> None:
        target = self._move(path, self.failed_dir)
        if target is not None:
            message = str(exc) if not isinstance(exc, InputError) else exc.message
            hint = getattr(exc, "hint", "")
            target.with_name(target.name + ".error").write_text(
                f"{message}\n{hint}\n".strip() + "\n"
            )

    @staticmethod
    def _move(path: Path, folder: Path) -> Path | None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
        try:
            shutil.move(str(path), target)
        except FileNotFoundError:
            return None
        return target
