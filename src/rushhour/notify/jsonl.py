"""A JSON-lines file channel: one anomaly per line, appended and flushed."""

from __future__ import annotations

import json
from pathlib import Path

from rushhour.records import AnomalyEvent


class JsonlChannel:
    """Appends each event to ``path`` as one JSON object per line."""

    name = "jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def send(self, event: AnomalyEvent) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event.to_json(), sort_keys=True) + "\n")
