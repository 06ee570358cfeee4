"""Alert hygiene: filters, the M-of-N bucket trigger, grouping, repeat interval and cooldown.

Every piece is pure: fed explicit times (epoch seconds), it returns decisions and never reads a clock.

>>> f = AlertFilter(min_rel_deviation=0.2, direction="above")
>>> f.passes(130.0, 100.0), f.passes(110.0, 100.0), f.passes(50.0, 100.0)
(True, False, False)
>>> t = MofN(2, 3)
>>> [t.observe("s", x) for x in (True, False, True, False, False)]
[False, False, True, False, False]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rushhour.notify.alert import Alert

DIRECTIONS = ("above", "below", "both")


@dataclass(frozen=True)
class AlertFilter:
    """A bucket counts only when it deviates enough, on the configured side of expected."""

    min_abs_deviation: float = 0.0
    min_rel_deviation: float = 0.0
    direction: str = "both"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}"
            )
        if self.min_abs_deviation < 0 or self.min_rel_deviation < 0:
            raise ValueError(
                "min_abs_deviation and min_rel_deviation must be >= 0, got "
                f"{self.min_abs_deviation} and {self.min_rel_deviation}"
            )

    def passes(self, value: float, expected: float | None) -> bool:
        if expected is None:
            return True
        diff = value - expected
        if self.direction == "above" and diff <= 0:
            return False
        if self.direction == "below" and diff >= 0:
            return False
        if abs(diff) < self.min_abs_deviation:
            return False
        return not (expected and abs(diff) / abs(expected) < self.min_rel_deviation)


class MofN:
    """Fires while at least ``m`` of the last ``n`` buckets of a series were anomalous."""

    def __init__(self, m: int = 1, n: int = 1) -> None:
        if not 1 <= m <= n:
            raise ValueError(f"M-of-N needs 1 <= m <= n, got m={m}, n={n}")
        self.m, self.n = m, n
        self._window: dict[str, deque[bool]] = {}

    def observe(self, series: str, anomalous: bool) -> bool:
        win = self._window.setdefault(series, deque(maxlen=self.n))
        win.append(bool(anomalous))
        return sum(win) >= self.m

    def snapshot(self) -> dict[str, Any]:
        return {k: list(v) for k, v in self._window.items()}

    def restore(self, state: dict[str, Any]) -> MofN:
        self._window = {k: deque(map(bool, v), maxlen=self.n) for k, v in state.items()}
        return self


@dataclass
class Group:
    """Alerts collected under the same values of the ``group_by`` labels."""

    labels: dict[str, str]
    first_seen: float
    alerts: list[Alert] = field(default_factory=list)

    @property
    def key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


class Grouper:
    """Holds alerts for ``group_wait`` seconds so simultaneous ones go out as one message.

    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 1, 5, tzinfo=UTC)
    >>> g = Grouper(["region"], group_wait=30)
    >>> for s in ("a", "b"):
    ...     g.add(Alert(s, {"region": "eu"}, "firing", t, t, 2, 1, 1, 5, "warning"), now=0)
    >>> g.due(10), [len(x.alerts) for x in g.due(30)]
    ([], [2])
    """

    def __init__(self, group_by: list[str], group_wait: float) -> None:
        if group_wait < 0:
            raise ValueError(f"group_wait must be >= 0 seconds, got {group_wait}")
        self.group_by = list(group_by)
        self.group_wait = float(group_wait)
        self._groups: dict[str, Group] = {}

    def add(self, alert: Alert, now: float) -> None:
        labels = alert.all_labels
        gl = {k: labels.get(k, "") for k in self.group_by}
        # firing and resolved never share a message: their receivers act differently
        key = Group(gl, now).key + f"|{alert.status}"
        group = self._groups.setdefault(key, Group(gl, now))
        group.alerts = [a for a in group.alerts if a.id != alert.id] + [alert]

    def due(self, now: float, *, force: bool = False) -> list[Group]:
        ready = [
            k for k, g in self._groups.items() if force or now - g.first_seen >= self.group_wait
        ]
        return [self._groups.pop(k) for k in ready]

    def pending(self) -> int:
        return sum(len(g.alerts) for g in self._groups.values())


class RepeatCooldown:
    """Repeat a still-firing alert every ``repeat_interval``; hold a new episode during ``cooldown``.

    The cooldown starts when a series' episode resolves: a new episode that opens within it is
    announced neither firing nor resolved (it flaps), unless it is still open when the cooldown ends.

    >>> rc = RepeatCooldown(repeat_interval=3600, cooldown=600)
    >>> rc.on_firing("s", 0), rc.due_repeats(1800), rc.due_repeats(3600)
    (True, [], [('s', 1)])
    >>> rc.on_resolved("s", 4000), rc.on_firing("s", 4300), rc.on_resolved("s", 4400)
    (True, False, False)
    """

    def __init__(self, repeat_interval: float, cooldown: float) -> None:
        if repeat_interval <= 0 or cooldown < 0:
            raise ValueError(
                f"repeat_interval must be > 0 and cooldown >= 0 seconds, got {repeat_interval} and {cooldown}"
            )
        self.repeat_interval = float(repeat_interval)
        self.cooldown = float(cooldown)
        self._sent: dict[str, tuple[float, int]] = {}  # series -> (last sent, repeat count)
        self._held: dict[str, float] = {}  # series -> when the held episode opened
        self._resolved_at: dict[str, float] = {}

    def on_firing(self, series: str, now: float) -> bool:
        """Whether to announce a newly opened episode now."""
        last = self._resolved_at.get(series)
        if last is not None and now - last < self.cooldown:
            self._held[series] = now
            return False
        self._sent[series] = (now, 0)
        return True

    def release_held(self, now: float) -> list[str]:
        """Held episodes still open when their cooldown ended: announce them now."""
        out = []
        for series in list(self._held):
            if now - self._resolved_at.get(series, now) >= self.cooldown:
                del self._held[series]
                self._sent[series] = (now, 0)
                out.append(series)
        return out

    def on_resolved(self, series: str, now: float) -> bool:
        """Whether to announce this resolve (not for an episode that was never announced)."""
        self._resolved_at[series] = now
        if self._held.pop(series, None) is not None:
            return False
        return self._sent.pop(series, None) is not None

    def due_repeats(self, now: float) -> list[tuple[str, int]]:
        """Series whose firing alert should be sent again, with the repeat number."""
        out = []
        for series, (last, n) in list(self._sent.items()):
            if now - last >= self.repeat_interval:
                self._sent[series] = (now, n + 1)
                out.append((series, n + 1))
        return out

    def escalate(self, series: str, now: float) -> int | None:
        """An announced episode got worse: the repeat number to re-send it under, now (else None)."""
        if series not in self._sent:
            return None
        n = self._sent[series][1] + 1
        self._sent[series] = (now, n)
        return n

    def snapshot(self) -> dict[str, Any]:
        return {
            "sent": {k: list(v) for k, v in self._sent.items()},
            "held": dict(self._held),
            "resolved_at": dict(self._resolved_at),
        }

    def restore(self, state: dict[str, Any]) -> RepeatCooldown:
        self._sent = {k: (float(v[0]), int(v[1])) for k, v in state.get("sent", {}).items()}
        self._held = {k: float(v) for k, v in state.get("held", {}).items()}
        self._resolved_at = {k: float(v) for k, v in state.get("resolved_at", {}).items()}
        return self
