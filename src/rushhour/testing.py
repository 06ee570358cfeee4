"""Helpers for testing rushhour and its plugins the way rushhour tests itself.

>>> clock = FakeClock(wall=1_700_000_000)
>>> clock.sleep(5); clock.monotonic(), clock.wall()
(5.0, 1700000005.0)
"""

from __future__ import annotations

from rushhour.records import AnomalyEvent


class FakeClock:
    """A clock that only moves when slept or advanced."""

    def __init__(self, wall: float = 0.0) -> None:
        self._mono = 0.0
        self._wall0 = float(wall)

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall0 + self._mono

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        self._mono += seconds


class ListChannel:
    """A notification channel that keeps what it is sent."""

    name = "list"

    def __init__(self) -> None:
        self.events: list[AnomalyEvent] = []

    def send(self, event: AnomalyEvent) -> None:
        self.events.append(event)
