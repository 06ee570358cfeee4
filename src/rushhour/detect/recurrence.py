"""Daily recurrence: a surprise that recent days showed at the same time of day is not news.

The baseline's daily profile learns a series' rhythm, but not a narrow spike that comes back every
day a few buckets early or late (a nightly job, a backup, a cron burst): averaged over a 5-minute
slot with a jitter of a few buckets, and learned at a reduced weight as an outlier, it never
becomes "expected". The temporal novelty stage (:mod:`rushhour.detect.novelty`) then holds such a
spike to its frequency over all buckets (about ``Q = 1e-3/288`` for a daily one at 5 minutes), a
score just above the alert level, so each recurrence still pages.

This stage reads the same surprise against the time of day. The day is cut into ``slot``-second
phases (local time); each phase remembers the two largest daily maxima of its visits on earlier
days, decayed by ``keep`` per day. When the phase or a neighbouring one (``reach`` slots either
side) has been visited on at least ``min_days`` earlier days and ``times`` (2) of those days showed
a comparable surprise (``>= rel·u - delta``, the novelty stage's comparison, and at least
``floor`` = 5, the alert level: only a recurring *alert* counts, not the largest of a slot's
ordinary buckets), the surprise is bounded by ``allowance`` (``-log10 Q``: 3 means ``Q = 1e-3``,
a score of 0.375, under the alert level). A surprise larger than what the phase showed, at a
time of day that has been quiet, or seen there on one earlier day only (yesterday's incident at
the same hour), keeps its score.

The state of a series is a fixed array (five values per phase), so chunks join up exactly.

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

from rushhour.errors import UsageError

#: values per phase in a state row: the two largest daily maxima of earlier days (decayed), days
#: seen, the day of the current visit, the largest surprise of the current visit
PER_SLOT = 5


@dataclass
class Recurrence:
    """Config (``slot``, ``reach``, ``keep``, ``min_days``, ``rel``, ``delta``, ``allowance``);
    state ``state_`` (see :meth:`initial_state`)."""

    #: seconds per phase of the day (30 minutes: a daily job's jitter of a few buckets stays inside)
    slot: float = 1800.0
    #: neighbouring phases read on either side
    reach: int = 1
    #: per day, the factor by which a phase's remembered surprise fades
    keep: float = 0.9
    #: a phase must have been visited on at least this many earlier days
    min_days: int = 2
    #: comparable, as in the novelty stage: ``u' >= rel·u - delta``
    rel: float = 0.8
    delta: float = 2.0
    #: the bound (``-log10 Q``) of a surprise that recurs at this time of day
    allowance: float = 3.0
    #: earlier days that must have shown a comparable surprise at this phase (1 or 2)
    times: int = 2
    #: a remembered surprise counts only from this level on (``-log10 Q``; 5 = the alert level)
    floor: float = 5.0
    state_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (
            self.slot <= 0
            or 86400 % self.slot
            or self.reach < 0
            or not 0 < self.keep <= 1
            or self.min_days < 1
            or not 0 < self.rel <= 1
            or self.times not in (1, 2)
        ):
            raise UsageError(
                "recurrence needs a slot dividing the day, reach >= 0, 0 < keep <= 1, "
                f"min_days >= 1, 0 < rel <= 1; got {self.slot}, {self.reach}, {self.keep}, "
                f"{self.min_days}, {self.rel}"
            )

    @property
    def slots(self) -> int:
        return int(86400 // self.slot)

    def initial_state(self) -> np.ndarray:
        """One series' state: per phase, remembered surprise 0, no day seen, no visit yet."""
        st = np.zeros((self.slots, PER_SLOT))
        st[:, 3] = -1.0
        return st.ravel()

    def cap(self, local_seconds: np.ndarray, surprise: np.ndarray) -> np.ndarray:
        """Bounded surprises of one series' next buckets (local wall-clock epoch seconds)."""
        if self.state_ is None:
            self.state_ = self.initial_state()
        u = np.asarray(surprise, dtype=float)
        rows = np.zeros(u.shape[0], dtype=np.int64)
        return self.cap_rows(np.asarray(local_seconds, dtype=float), u, rows, self.state_[None])

    def cap_rows(
        self, local_seconds: np.ndarray, surprise: np.ndarray, rows: np.ndarray, states: np.ndarray
    ) -> np.ndarray:
        """:meth:`cap` for many series: bucket ``i`` belongs to the series whose state is
        ``states[rows[i]]`` (rows of :meth:`initial_state`, moved on in place); each series'
        buckets in time order. NaN surprises pass through and are not learned."""
        p = np.array(
            [
                self.slot,
                self.reach,
                self.keep,
                self.min_days,
                self.rel,
                self.delta,
                self.allowance,
                self.times,
                self.floor,
            ]
        )
        return _cap(
            np.asarray(local_seconds, dtype=float),
            np.asarray(surprise, dtype=float),
            rows,
            states,
            p,
        )


@nb.njit(cache=True)
def _cap(
    secs: np.ndarray, u: np.ndarray, rows: np.ndarray, states: np.ndarray, p: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    slot, reach, keep, min_days, rel, delta = p[0], int(p[1]), p[2], p[3], p[4], p[5]
    allowance, times, floor = p[6], int(p[7]), p[8]
    nslots = states.shape[1] // 5
    out = np.empty(u.shape[0])
    for i in range(u.shape[0]):
        ui = u[i]
        out[i] = ui
        if np.isnan(ui):
            continue
        st = states[rows[i]]
        day = np.floor(secs[i] / 86400.0)
        s = int((secs[i] - day * 86400.0) // slot) % nslots
        # visits of earlier days (this phase and its neighbours) join the remembered days
        for d in range(-reach, reach + 1):
            _roll(st, 5 * ((s + d) % nslots), day, keep)
        if ui > allowance:
            # the remembered surprise (the largest, or the second largest day's) of this phase
            # and its neighbours on earlier days
            best = 0.0
            for d in range(-reach, reach + 1):
                j = 5 * ((s + d) % nslots)
                if st[j + 2] >= min_days and st[j + times - 1] > best:
                    best = st[j + times - 1]
            if best > 0.0 and best >= max(ui * rel - delta, floor):
                out[i] = allowance
        j = 5 * s
        if st[j + 3] != day:
            st[j + 3] = day
            st[j + 4] = 0.0
        st[j + 4] = max(st[j + 4], ui)
    return out


@nb.njit(cache=True)
def _roll(st: np.ndarray, j: int, day: float, keep: float) -> None:  # pragma: no cover - compiled
    # a phase's visit of an earlier day becomes one of its remembered days (once)
    if st[j + 3] >= 0.0 and st[j + 3] != day:
        top, second, visit = st[j] * keep, st[j + 1] * keep, st[j + 4]
        st[j] = max(top, visit)
        st[j + 1] = max(second, min(top, visit))
        st[j + 2] += 1.0
        st[j + 3] = -1.0
        st[j + 4] = 0.0
