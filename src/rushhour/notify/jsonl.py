"""A JSON-lines file channel: one alert per line, appended and flushed.

Lines carry the dedupe key, so a reader can drop the rare line repeated by a retry after a crash.
``send`` keeps the demo's per-event call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from rushhour.notify.registry import ChannelError, Delivery, register
from rushhour.records import AnomalyEvent
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
        lines = [
            json.dumps({"dedupe_key": delivery.key, **a.summary_json()}, sort_keys=True)
            for a in delivery.alerts
        ]
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in lines))
        except OSError as exc:
            raise ChannelError(f"jsonl {self.path}: {exc.strerror or exc}") from exc

    def send(self, event: AnomalyEvent) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event.to_json(), sort_keys=True) + "\n")


@register("jsonl")
def _build(cfg: JsonlNotify, environ: Mapping[str, str]) -> JsonlChannel:
    ch = JsonlChannel(cfg.path)
    ch.name, ch.min_severity = cfg.channel_name(), cfg.min_severity
    return ch
