"""A small JSON ledger of ingested content hashes, so the same data is never counted twice.

The hash is SHA-256 of the file's bytes as stored (so a renamed or copied file is recognised). The
ledger is a plain JSON object ``{hash: {"source", "bytes", "ingested_at"}}``; the live pipeline will
keep the same facts in the store.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> led = Ledger(d / "ledger.json")
>>> h = content_hash(b"abc")
>>> led.seen(h), led.record(h, "a.log", 3), led.seen(h)
(None, None, 'a.log')
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rushhour.errors import InputError


def content_hash(src: str | Path | bytes) -> str:
    """SHA-256 hex digest of bytes or of a file's content (streamed)."""
    if isinstance(src, bytes):
        return hashlib.sha256(src).hexdigest()
    try:
        with Path(src).open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", source=str(src)) from exc


class Ledger:
    """Hashes already ingested, persisted to ``path`` on each :meth:`record`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(
                    "ingest ledger is not valid JSON",
                    source=str(path),
                    hint="delete it to start afresh",
                ) from exc
            if isinstance(data, dict):
                self.entries = {k: v for k, v in data.items() if isinstance(v, dict)}

    def seen(self, digest: str) -> str | None:
        """The source first ingested with this hash, or None."""
        entry = self.entries.get(digest)
        return None if entry is None else str(entry.get("source"))

    def record(self, digest: str, source: str, size: int) -> None:
        self.entries[digest] = {
            "source": source,
            "bytes": size,
            "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.path)
