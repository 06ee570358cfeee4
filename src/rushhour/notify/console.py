"""The console channel: one coloured line per anomaly (rich), or one JSON object per line."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from rushhour.records import AnomalyEvent


class ConsoleChannel:
    """Prints events to the terminal."""

    name = "console"

    def __init__(self, console: Console, *, as_json: bool = False, tz: Any = None) -> None:
        self.console = console
        self.as_json = as_json
        self.tz = tz

    def send(self, event: AnomalyEvent) -> None:
        if self.as_json:
            self.console.out(json.dumps(event.to_json(), sort_keys=True), highlight=False)
            return
        if event.status == "resolved":
            self.console.print(f"[green]RESOLVED[/] {event.sentence(self.tz)}", highlight=False)
            return
        colour = "red" if event.severity == "critical" else "yellow"
        self.console.print(f"[{colour}]ANOMALY[/]  {event.sentence(self.tz)}", highlight=False)
