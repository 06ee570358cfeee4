"""A JSON-lines file channel: one alert per line, appended and flushed.

Lines carry the dedupe key. A delivery in doubt (the process died while writing it) first reads
the file for that key and writes only the alerts not already there, completing a line a crash cut
short on a line of its own: each alert's line appears once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from rushhour.notify.registry import ChannelError, Delivery, register
from rushhour.settings import JsonlNotify


class JsonlChannel:
    """Appends each alert to ``path`` as one JSON object per line."""

    uses_image = False  # text only: no plot is rendered for it

    name = "jsonl"
    min_severity = "info"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def deliver(self, delivery: Delivery) -> None:
        lines = {
            a.id: json.dumps({"dedupe_key": delivery.key, **a.summary_json()}, sort_keys=True)
            for a in delivery.alerts
        }
        try:
            prefix = ""
            if delivery.in_doubt:
                written, complete = self._written(delivery.key)
                lines = {k: v for k, v in lines.items() if k not in written}
                prefix = "" if complete else "\n"
            if lines:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(prefix + "".join(line + "\n" for line in lines.values()))
        except OSError as exc:
            raise ChannelError(f"jsonl {self.path}: {exc.strerror or exc}") from exc

    def _written(self, key: str) -> tuple[set[str], bool]:
        """Ids of the alerts already written under ``key``; whether the file ends with a newline."""
        if not self.path.exists():
            return set(), True
        text = self.path.read_text(encoding="utf-8")
        ids = set()
        for line in text.splitlines():
            if key in line:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a crash cut short
                if row.get("dedupe_key") == key:
                    ids.add(str(row.get("id")))
        return ids, text.endswith("\n") or not text


@register("jsonl")
def _build(cfg: JsonlNotify, environ: Mapping[str, str]) -> JsonlChannel:
    ch = JsonlChannel(cfg.path)
    ch.name, ch.min_severity = cfg.channel_name(), cfg.min_severity
    return ch
