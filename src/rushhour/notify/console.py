"""The console channel: one coloured line per alert (rich), or one JSON object per line."""

from __future__ import annotations

import json
from collections.abc import Mapping

from rich.console import Console

from rushhour.notify.registry import Delivery, register
from rushhour.settings import ConsoleNotify


class ConsoleChannel:
    """Prints alerts to the terminal."""

    uses_image = False  # text only: no plot is rendered for it

    name = "console"
    min_severity = "info"

    def __init__(self, console: Console, *, as_json: bool = False) -> None:
        self.console = console
        self.as_json = as_json

    def deliver(self, delivery: Delivery) -> None:
        for a in delivery.alerts:
            if self.as_json:
                line = json.dumps({"event": "alert", **a.summary_json()}, sort_keys=True)
                self.console.out(line, highlight=False)
                continue
            colour = {"resolved": "green"}.get(
                a.status, "red" if a.severity == "critical" else "yellow"
            )
            tag = "RESOLVED" if a.status == "resolved" else a.severity.upper()
            link = f" [dim]{a.link()}[/]" if a.link() else ""
            self.console.print(f"[{colour}]{tag}[/] {a.sentence()}{link}", highlight=False)


@register("console")
def _build(cfg: ConsoleNotify, environ: Mapping[str, str]) -> ConsoleChannel:
    ch = ConsoleChannel(Console())
    ch.name, ch.min_severity = cfg.channel_name(), cfg.min_severity
    return ch
