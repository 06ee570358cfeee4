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
small array and chunks join up exactly. The decay is applied lazily: the counts are stored divided
by ``keep**n`` (``n`` buckets since the last rescaling) and a new bucket adds ``1 / keep**n``, so a
bucket touches only the bins it reaches, not all of them; the counts are stored as float32 (the
arithmetic is float64), half the memory of float64 at a relative rounding of 6e-8.

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

from rushhour.errors import UsageError


@dataclass
class Novelty:
    """Config (``memory``, ``rel``, ``delta``, ``allowance``, ``width``, ``bins``); state ``state_``."""

    #: buckets of history (the histogram's decay time)
    memory: float = 2000.0
    #: a past surprise ``u'`` is comparable to ``u`` when ``u' >= rel·u - delta`` ...
    rel: float = 0.8
    delta: float = 2.0
    #: ... and a surprise is at most ``allowance`` decades beyond the comparable ones' frequency
    allowance: float = 3.0
    #: bins are ``width`` wide in ``log1p(u)`` (0.05: about 5% of ``u`` from u = 1 on, up to ~600)
    width: float = 0.05
    bins: int = 128
    #: count comparable *events* (upcrossings of the comparable level) rather than buckets
    episodes: bool = True
    state_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.memory < 1 or self.width <= 0 or self.bins < 2 or not 0 < self.rel <= 1:
            raise UsageError(
                "novelty needs memory >= 1, width > 0, bins >= 2, 0 < rel <= 1; got "
                f"{self.memory}, {self.width}, {self.bins}, {self.rel}"
            )

    def initial_state(self) -> np.ndarray:
        """One series' state (float32): the buckets since the counts were last rescaled, the
        histogram's total mass, the bin after the previous surprise's, then the bins' counts (mass
        and counts stored divided by the decay of those buckets)."""
        return np.zeros(self.bins + 3, dtype=np.float32)

    def restore_state(self, saved: list[float] | np.ndarray) -> np.ndarray:
        """A state row from a snapshot: this layout, or the earlier one (``bins + 2`` float64: the
        decayed mass, the previous surprise, then the decayed counts)."""
        values = np.asarray(saved, dtype=float)
        if values.shape == (self.bins + 3,):
            return values.astype(np.float32)
        if values.shape != (self.bins + 2,):
            raise UsageError(
                f"a novelty state of {values.shape[0]} values; this histogram needs {self.bins + 3}"
            )
        prev = values[1]
        st = self.initial_state()
        st[1] = values[0]
        st[2] = _bin(prev, self.width, self.bins) + 1 if prev > 0 else 0
        st[3:] = values[2:]
        return st

    def cap(self, surprise: np.ndarray) -> np.ndarray:
        """Bounded surprises of one series' next buckets, learning as it goes."""
        if self.state_ is None:
            self.state_ = self.initial_state()
        u = np.asarray(surprise, dtype=float)
        return self.cap_rows(u, np.zeros(u.shape[0], dtype=np.int64), self.state_[None])

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


#: rescale the stored counts when the decay since the last rescaling falls below this (or after
#: ``_RESCALE_N`` buckets, so that ``n`` stays an exact float32 integer): 1/keep**n stays well
#: inside float32's range
_RESCALE_F = 1e-20
_RESCALE_N = 1 << 23


@nb.njit(cache=True)
def _bin(u: float, width: float, nbins: int) -> int:  # pragma: no cover - compiled
    """The bin of surprise ``u`` (the last one open-ended)."""
    return min(int(np.log1p(u) / width), nbins - 1)


@nb.njit(cache=True)
def _cap(
    u: np.ndarray, rows: np.ndarray, states: np.ndarray, p: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    # a state row: n (buckets since the last rescaling), the mass (buckets), the bin after the
    # previous surprise's (0 when it was none), then per bin the count of buckets at or above its
    # lower edge (episodes: of upcrossings of that edge); mass and counts decay by keep per bucket
    # and are stored divided by keep**n
    memory, rel, delta, allowance, width, episodes = p[0], p[1], p[2], p[3], p[4], p[5]
    keep = 1.0 - 1.0 / memory
    nbins = states.shape[1] - 3
    out = np.empty(u.shape[0])
    for i in range(u.shape[0]):
        ui = u[i]
        out[i] = ui
        if np.isnan(ui):
            continue
        st = states[rows[i]]
        n = float(st[0])
        decay = keep**n
        top = _bin(ui, width, nbins)
        if ui > 0:
            # the mass of past surprises comparable to this one (reaching the bin of rel·u - delta)
            lo = min(int(np.ceil(np.log1p(max(ui * rel - delta, 0.0)) / width)), nbins - 1)
            k = st[3 + lo] * decay
            if k > 0:
                out[i] = min(ui, -np.log10(k / (st[1] * decay + 1.0)) + allowance)
        n += 1.0
        decay *= keep
        if decay < _RESCALE_F or n >= _RESCALE_N:
            for b in range(1, nbins + 3):
                if b != 2:
                    st[b] = st[b] * decay
            n = 0.0
            decay = 1.0
        add = 1.0 / decay
        st[0] = n
        st[1] = st[1] + add
        # bins whose lower edge this bucket reaches (upcrosses, for episodes)
        first = int(st[2]) if episodes > 0 else 0
        for b in range(first, top + 1):
            st[3 + b] = st[3 + b] + add
        st[2] = top + 1 if ui > 0 else 0
    return out
