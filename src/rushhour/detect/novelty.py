"""Temporal novelty: a surprise is bounded by how often a comparable surprise was seen recently.

The likelihood stage (:mod:`rushhour.detect.likelihood`) reads each component's raw signal against a
Gaussian of its own history. Real series are heavier-tailed than that: a server whose CPU spikes
every day at about the same time, or a disk that writes in bursts from an idle zero, scores each
recurrence as a "1e-15" event although the series shows one every few hundred buckets. This stage
corrects the Gaussian tail with the empirical one: if comparable surprises (``u' >= rel·u - delta``,
in ``-log10 Q`` units) made up a fraction ``f`` of the last ``memory`` buckets, the surprise is at
most ``-log10 f + allowance``. A surprise never seen before, in that sense, is left as it is: an
anomaly that is new in kind keeps its score, a recurrence is judged by how often it recurs.

The history is a histogram of past surprises (``bins`` of ``width`` in ``log1p(-log10 Q)``, the
last bin open-ended) whose counts decay by ``1 - 1/memory`` per bucket, so the state of a series is a fixed,
small array and chunks join up exactly. The decay is applied lazily: the counts are stored
multiplied by a growth ``g = keep**-n`` (``n`` buckets since the last rescaling) and a new bucket
adds ``g``, so a bucket touches only the bins it reaches, not all of them; the counts are stored as
float32 (the arithmetic is float64, ``g`` is kept to 48 bits as a float32 pair), half the memory of
float64 at a relative rounding of 6e-8.

>>> import numpy as np
>>> nv = Novelty(memory=500)
>>> u = np.zeros(3000); u[100::250] = 15.0   # the same surprise every 250 buckets
>>> u[2900] = 30.0                           # and one of a new size
>>> out = nv.cap(u)
>>> float(out[100]), bool(out[2850] < 6), float(out[2900])
(15.0, True, 30.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from rushhour.detect.comparable import DELTA, REL, level, single_series, valid_rel
from rushhour.errors import UsageError


@dataclass
class Novelty:
    """Config (``memory``, ``rel``, ``delta``, ``allowance``, ``width``, ``bins``); state ``state_``."""

    #: buckets of history (the histogram's decay time)
    memory: float = 2000.0
    #: a past surprise ``u'`` is comparable to ``u`` when ``u' >= rel·u - delta``
    #: (:mod:`rushhour.detect.comparable`) ...
    rel: float = REL
    delta: float = DELTA
    #: ... and a surprise is at most ``allowance`` decades beyond the comparable ones' frequency
    allowance: float = 3.0
    #: bins are ``width`` wide in ``log1p(u)`` (0.05: about 5% of ``u`` from u = 1 on, up to ~600)
    width: float = 0.05
    bins: int = 128
    #: count comparable *events* (upcrossings of the comparable level) rather than buckets
    episodes: bool = True
    state_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.memory < 1 or self.width <= 0 or self.bins < 2 or not valid_rel(self.rel):
            raise UsageError(
                "novelty needs memory >= 1, width > 0, bins >= 2, 0 < rel <= 1; got "
                f"{self.memory}, {self.width}, {self.bins}, {self.rel}"
            )

    def initial_state(self) -> np.ndarray:
        """One series' state (float32): the growth of the buckets since the counts were last
        rescaled (a float32 pair, high part then low part), the histogram's total mass, the bin
        after the previous surprise's, then the bins' counts (mass and counts stored multiplied
        by the growth)."""
        st = np.zeros(self.bins + 4, dtype=np.float32)
        st[0] = 1.0
        return st

    def restore_state(self, saved: list[float] | np.ndarray) -> np.ndarray:
        """A state row from a snapshot: this layout, or the earlier one (``bins + 2`` float64: the
        decayed mass, the previous surprise, then the decayed counts)."""
        values = np.asarray(saved, dtype=float)
        if values.shape == (self.bins + 4,):
            return values.astype(np.float32)
        if values.shape != (self.bins + 2,):
            raise UsageError(
                f"a novelty state of {values.shape[0]} values; this histogram needs {self.bins + 4}"
            )
        prev = values[1]
        st = self.initial_state()
        st[2] = values[0]
        st[3] = _bin(prev, self.width, self.bins) + 1 if prev > 0 else 0
        st[4:] = values[2:]
        return st

    def cap(self, surprise: np.ndarray) -> np.ndarray:
        """Bounded surprises of one series' next buckets, learning as it goes."""
        if self.state_ is None:
            self.state_ = self.initial_state()
        u = np.asarray(surprise, dtype=float)
        return self.cap_rows(u, single_series(u.shape[0]), self.state_[None])

    def cap_rows(self, surprise: np.ndarray, rows: np.ndarray, states: np.ndarray) -> np.ndarray:
        """:meth:`cap` for many series: bucket ``i`` belongs to the series whose state is
        ``states[rows[i]]`` (rows of :meth:`initial_state`, moved on in place); each series'
        buckets in time order. NaN surprises (nothing known) pass through and are not learned."""
        if states.dtype != np.float32:
            raise UsageError(f"novelty states are float32 rows, got {states.dtype}")
        p = np.array(
            [self.memory, self.rel, self.delta, self.allowance, self.width, float(self.episodes)]
        )
        return _cap(np.asarray(surprise, dtype=float), rows, states, p)


#: rescale the stored counts when the growth since the last rescaling passes this (float32 holds
#: up to 3e38)
_RESCALE = 1e20


@nb.njit(cache=True)
def _bin(u: float, width: float, nbins: int) -> int:  # pragma: no cover - compiled
    """The bin of surprise ``u`` (the last one open-ended)."""
    return min(int(np.log1p(u) / width), nbins - 1)


@nb.njit(cache=True)
def _cap(
    u: np.ndarray, rows: np.ndarray, states: np.ndarray, p: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    # a state row: the growth g = keep**-n of the n buckets since the last rescaling (high and low
    # float32 parts), the mass (buckets), the bin after the previous surprise's (0 when it was
    # none), then per bin the count of buckets at or above its lower edge (episodes: of upcrossings
    # of that edge); mass and counts decay by keep per bucket and are stored multiplied by g
    memory, rel, delta, allowance, width, episodes = p[0], p[1], p[2], p[3], p[4], p[5]
    grow = 1.0 / (1.0 - 1.0 / memory)
    nbins = states.shape[1] - 4
    out = np.empty(u.shape[0])
    for i in range(u.shape[0]):
        ui = u[i]
        out[i] = ui
        if np.isnan(ui):
            continue
        st = states[rows[i]]
        g = float(st[0]) + float(st[1])
        top = _bin(ui, width, nbins)
        if ui > 0:
            # the mass of past surprises comparable to this one (reaching the bin of rel·u - delta)
            lo = min(int(np.ceil(np.log1p(level(ui, rel, delta, 0.0)) / width)), nbins - 1)
            k = st[4 + lo] / g
            if k > 0:
                out[i] = min(ui, -np.log10(k / (st[2] / g + 1.0)) + allowance)
        g *= grow
        if g > _RESCALE:
            for b in range(2, nbins + 4):
                if b != 3:
                    st[b] = st[b] / g
            g = 1.0
        st[0] = g
        st[1] = g - float(st[0])
        st[2] = st[2] + g
        # bins whose lower edge this bucket reaches (upcrosses, for episodes)
        first = int(st[3]) if episodes > 0 else 0
        for b in range(first, top + 1):
            st[4 + b] = st[4 + b] + g
        st[3] = top + 1 if ui > 0 else 0
    return out
