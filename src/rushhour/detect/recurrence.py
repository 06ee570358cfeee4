"""Daily recurrence: a surprise that recent days showed at the same time of day is not news.

The baseline's daily profile learns a series' rhythm, but not a narrow spike that comes back every
day a few buckets early or late (a nightly job, a backup, a cron burst): averaged over a 5-minute
slot with a jitter of a few buckets, and learned at a reduced weight as an outlier, it never
becomes "expected". The temporal novelty stage (:mod:`rushhour.detect.novelty`) then holds such a
spike to its frequency over all buckets (about ``Q = 1e-3/288`` for a daily one at 5 minutes), a
score just above the alert level, so each recurrence still pages.

This stage reads the same surprise against the time of day. The day is cut into ``slot``-second
phases (local time), and each phase keeps the largest surprise of each of the last ``days`` days.
When at least ``times`` (2) earlier days of that window showed, at this phase or a neighbouring
one (``reach`` phases either side, so a jitter across a phase boundary still matches), a
comparable surprise (``>= rel·u - delta``, the novelty stage's comparison, and at least ``floor``
= 7, ``Q = 1e-7``, beyond the alert level's 1e-5: a distinct recurring spike counts, not the
largest of a phase's ordinary buckets nor a marginal page such as a daily ramp timed a few minutes
off, which would discount the real incidents of that hour), the surprise is bounded by ``allowance`` (``-log10 Q``: 3 means ``Q = 1e-3``, a score of
0.375, under the alert level). A surprise much larger than the recurring one, at a time of day
that has been quiet, or seen there on one earlier day only (yesterday's incident at the same
hour), keeps its score.

The state of a series is a fixed array (``days`` values per phase and the current day), so chunks
join up exactly. It is stored as float32 (the comparisons are made in float64): half the memory of
float64, a recurring surprise rounded by at most 6e-8 of itself, and day numbers exact.

>>> import numpy as np
>>> rec = Recurrence()
>>> secs = np.arange(0, 6 * 86400, 300.0)          # six days of 5-minute buckets
>>> u = np.zeros(secs.size); u[(secs % 86400) == 3600 * 3] = 15.0   # 03:00 every day
>>> u[int(5 * 288 + 200)] = 15.0                   # and once at 16:40 on the last day
>>> out = rec.cap(secs, u)
>>> [float(out[d * 288 + 36]) for d in range(4)]  # new, seen once before, then daily
[15.0, 15.0, 3.0, 3.0]
>>> float(out[5 * 288 + 200])                      # the same size at another time: news
15.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from rushhour.detect.comparable import DELTA, REL, level, single_series, valid_rel
from rushhour.errors import UsageError


@dataclass
class Recurrence:
    """Config (``slot``, ``reach``, ``days``, ``times``, ``rel``, ``delta``, ``floor``,
    ``allowance``); state ``state_`` (see :meth:`initial_state`)."""

    #: seconds per phase of the day
    slot: float = 1800.0
    #: neighbouring phases read on either side (±30 minutes and more: a daily job's jitter)
    reach: int = 1
    #: days remembered (the window the recurrence is looked for in), today included
    days: int = 8
    #: earlier days that must have shown a comparable surprise near this phase
    times: int = 2
    #: comparable, as in the novelty stage: ``u' >= rel·u - delta``
    #: (:mod:`rushhour.detect.comparable`) ...
    rel: float = REL
    delta: float = DELTA
    #: ... and at least this (``-log10 Q``; 7 is a little beyond the alert level, 5)
    floor: float = 7.0
    #: the bound (``-log10 Q``) of a surprise that recurs at this time of day
    allowance: float = 3.0
    state_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (
            self.slot <= 0
            or 86400 % self.slot
            or self.reach < 0
            or not 1 <= self.times < self.days
            or not valid_rel(self.rel)
        ):
            raise UsageError(
                "recurrence needs a slot dividing the day, reach >= 0, 1 <= times < days, "
                f"0 < rel <= 1; got {self.slot}, {self.reach}, {self.times}, {self.days}, {self.rel}"
            )

    @property
    def slots(self) -> int:
        return int(86400 // self.slot)

    def initial_state(self) -> np.ndarray:
        """One series' state: the current day (none yet), then per remembered day (a ring indexed
        by day number) the largest surprise of each phase."""
        st = np.zeros(1 + self.days * self.slots, dtype=np.float32)
        st[0] = -1.0
        return st

    def restore_state(self, saved: list[float] | np.ndarray) -> np.ndarray:
        """A state row from a snapshot (float32, or the float64 of earlier versions)."""
        values = np.asarray(saved, dtype=np.float32)
        if values.shape != (1 + self.days * self.slots,):
            raise UsageError(
                f"a recurrence state of {values.size} values; this one needs "
                f"{1 + self.days * self.slots}"
            )
        return values

    def merge_states(self, saved: list[list[float]] | list[np.ndarray]) -> np.ndarray:
        """One state from several (per-component states of snapshots taken before the detector
        read recurrences of its combined surprise): per phase and day the largest surprise, each
        state first moved on to the latest day any of them has seen (days it skipped are empty)."""
        rows = [self.restore_state(v) for v in saved]
        out = self.initial_state()
        if not rows:
            return out
        day = max(float(r[0]) for r in rows)
        if day < 0:
            return out
        n = self.slots
        out[0] = day
        for r in rows:
            r = r.copy()
            if r[0] < 0 or day - r[0] >= self.days:
                continue  # nothing it holds lies in the window
            d = r[0] + 1
            while d <= day:
                base = 1 + int(d % self.days) * n
                r[base : base + n] = 0.0
                d += 1
            out[1:] = np.maximum(out[1:], r[1:])
        return out

    def cap(self, local_seconds: np.ndarray, surprise: np.ndarray) -> np.ndarray:
        """Bounded surprises of one series' next buckets (local wall-clock epoch seconds)."""
        if self.state_ is None:
            self.state_ = self.initial_state()
        u = np.asarray(surprise, dtype=float)
        rows = single_series(u.shape[0])
        return self.cap_rows(np.asarray(local_seconds, dtype=float), u, rows, self.state_[None])

    def cap_rows(
        self, local_seconds: np.ndarray, surprise: np.ndarray, rows: np.ndarray, states: np.ndarray
    ) -> np.ndarray:
        """:meth:`cap` for many series: bucket ``i`` belongs to the series whose state is
        ``states[rows[i]]`` (rows of :meth:`initial_state`, moved on in place); each series'
        buckets in time order. NaN surprises pass through and are not learned."""
        if states.dtype != np.float32:
            raise UsageError(f"recurrence states are float32 rows, got {states.dtype}")
        p = np.array(
            [
                self.slot,
                self.reach,
                self.days,
                self.times,
                self.rel,
                self.delta,
                self.floor,
                self.allowance,
            ]
        )
        secs = np.asarray(local_seconds, dtype=float)
        return _cap(secs, np.asarray(surprise, dtype=float), rows, states, p)


@nb.njit(cache=True)
def _cap(
    secs: np.ndarray, u: np.ndarray, rows: np.ndarray, states: np.ndarray, p: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    slot, reach, ndays, times = p[0], int(p[1]), int(p[2]), p[3]
    rel, delta, floor, allowance = p[4], p[5], p[6], p[7]
    nslots = (states.shape[1] - 1) // ndays
    out = np.empty(u.shape[0])
    for i in range(u.shape[0]):
        ui = u[i]
        out[i] = ui
        if np.isnan(ui):
            continue
        st = states[rows[i]]
        day = np.floor(secs[i] / 86400.0)
        s = int((secs[i] - day * 86400.0) // slot) % nslots
        # a new day: the ring slots of the days skipped since the last one are emptied
        if st[0] < day:
            first = day - ndays + 1 if st[0] < 0 or day - st[0] > ndays else st[0] + 1
            d = first
            while d <= day:
                base = 1 + int(d % ndays) * nslots
                st[base : base + nslots] = 0.0
                d += 1.0
            st[0] = day
        if ui > allowance:
            least = level(ui, rel, delta, floor)
            count = 0
            for age in range(1, ndays):
                base = 1 + int((day - age) % ndays) * nslots
                for k in range(-reach, reach + 1):
                    if st[base + (s + k) % nslots] >= least:
                        count += 1
                        break
            if count >= times:
                out[i] = allowance
        j = 1 + int(day % ndays) * nslots + s
        st[j] = max(st[j], ui)
    return out
