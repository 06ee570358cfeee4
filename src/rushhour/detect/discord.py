"""Shape novelty: distance from the latest shingle of values to its nearest neighbour in the past.

The last ``m`` values (a *shingle*), standardized by a slow EWMA mean and deviation of the series, are
compared with a memory of past shingles (one kept every ``stride`` buckets, the newest ``memory``
kept); the raw signal is the Euclidean distance to the nearest one, per value (``/ sqrt(m)``).
Shingles overlapping the current one are skipped, so a bucket is never compared with itself. A
pattern seen before, however unusual its level, scores low; a shape never seen scores high — the
"discord" idea behind KNN-based detectors, at a bounded cost of ``memory · m`` per bucket.

>>> import numpy as np
>>> d = Discord()
>>> x = np.tile([1.0, 2.0, 3.0, 2.0], 300); x[1000:1004] = [1.0, 9.0, 1.0, 9.0]
>>> raw = d.raw_values(x)
>>> int(np.argmax(raw[400:])) + 400 in range(1000, 1010)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np

from rushhour.errors import UsageError


@dataclass
class Discord:
    """Config (``m``, ``stride``, ``memory``, ``alpha``) and state (``*_``)."""

    m: int = 8
    stride: int = 4
    memory: int = 1000
    alpha: float = 0.001
    name: str = "discord"
    #: this component's own state when it is used alone (:meth:`raw_values`)
    own_: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.m < 2 or self.stride < 1 or self.memory < 1 or not 0 < self.alpha < 1:
            raise UsageError(
                f"need m >= 2, stride >= 1, memory >= 1, 0 < alpha < 1; got m={self.m}, "
                f"stride={self.stride}, memory={self.memory}, alpha={self.alpha}"
            )

    def initial(self) -> dict[str, np.ndarray]:
        """One series' state: buckets seen, slow mean and variance, shingles stored; the latest
        values; the stored shingles and when each was taken."""
        return {
            "state_": np.zeros(4),
            "recent_": np.full(self.m, np.nan),
            "bank_": np.zeros((self.memory, self.m)),
            "bank_t_": np.full(self.memory, -(10**12), dtype=np.int64),
        }

    def raw_values(self, values: np.ndarray) -> np.ndarray:
        if self.own_ is None:
            self.own_ = {k: v[None] for k, v in self.initial().items()}
        x = np.asarray(values, dtype=float)
        return self.raw(x, None, np.zeros(x.shape[0], dtype=np.int64), self.own_)

    def raw(
        self, x: np.ndarray, base: Any, rows: np.ndarray, st: dict[str, np.ndarray]
    ) -> np.ndarray:
        return _discord(
            np.asarray(x, dtype=float),
            rows,
            st["state_"],
            st["recent_"],
            st["bank_"],
            st["bank_t_"],
            self.stride,
            self.alpha,
        )


@nb.njit(cache=True)
def _discord(
    x: np.ndarray,
    rows: np.ndarray,
    states: np.ndarray,
    recents: np.ndarray,
    banks: np.ndarray,
    banks_t: np.ndarray,
    stride: int,
    alpha: float,
) -> np.ndarray:  # pragma: no cover - compiled
    m = recents.shape[1]
    cap = banks.shape[1]
    out = np.zeros(x.shape[0])
    cur = np.empty(m)
    for i in range(x.shape[0]):
        r = rows[i]
        st, recent, bank, bank_t = states[r], recents[r], banks[r], banks_t[r]
        xi = x[i]
        if np.isnan(xi):
            xi = recent[m - 1] if not np.isnan(recent[m - 1]) else 0.0
        for k in range(m - 1):
            recent[k] = recent[k + 1]
        recent[m - 1] = xi
        t = int(st[0])
        a = max(alpha, 1.0 / (st[0] + 1.0))
        d = xi - st[1]
        st[1] += a * d
        st[2] = (1.0 - a) * (st[2] + a * d * d)
        st[0] += 1.0
        if t < m:
            continue
        sd = max(np.sqrt(st[2]), 1e-9 + 1e-6 * abs(st[1]))
        for k in range(m):
            cur[k] = (recent[k] - st[1]) / sd
        n = min(int(st[3]), cap)
        best = np.inf
        for j in range(n):
            if t - bank_t[j] < m:
                continue
            s = 0.0
            for k in range(m):
                dd = cur[k] - bank[j, k]
                s += dd * dd
                if s >= best:
                    break
            if s < best:
                best = s
        if best < np.inf:
            out[i] = np.sqrt(best / m)
        if t % stride == 0:
            slot = int(st[3]) % cap
            for k in range(m):
                bank[slot, k] = cur[k]
            bank_t[slot] = t
            st[3] += 1.0
    return out
