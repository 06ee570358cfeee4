"""A second score path for count series whose noise model is well calibrated.

The likelihood stage (:mod:`rushhour.detect.likelihood`) judges each signal against its own history,
which is what makes one threshold work across heavy-tailed real series — but on request counts with
frequent incidents that history includes the incidents, widens, and incidents then score under the
alert level. When the baseline's noise model is right, the standardized residual ``z`` *is* already a
calibrated statistic and its Gaussian tail probability can be read directly, without that widening.

The path is open only while three checks pass, all learned causally from earlier buckets:

* the series is **count-like**: every value seen so far is a non-negative integer (request counts;
  CPU percentages, latencies and temperatures are not);
* the noise model is **calibrated**: the rate of *episodes* of ``|z| > 3`` (a bucket beyond 3σ
  whose predecessor was not; an incident of many buckets counts once) is, as an EWMA with a memory
  of about ``1/alpha`` buckets, below ``max_rate``. Gaussian noise gives about 0.0027 per bucket,
  and two incidents a day in 1-minute buckets add about 0.0014; ``max_rate`` = 0.012 leaves room for
  that, while heavy-tailed series (most of NAB's CPU, disk and network series) give 0.01-0.06. The
  rate is judged only after ``warmup`` buckets (4320: three days of minutes, several memories).
* a deviation of the opposite sign within ``returns`` buckets after a sustained run beyond 3σ is
  the **return to normal** after a level shift the baseline's offset had absorbed: not scored here.

While open, the surprise is ``-log10(2·Q(|z|)) - penalty`` (``Q`` the Gaussian upper tail; the
penalty asks for more than the likelihood path's ``1e-5`` before alerting on a raw z, since ``z``'s
tails are only approximately Gaussian); while closed it is 0. The detector takes the larger of this
and the likelihood path's surprise.

>>> import numpy as np
>>> cp = Calibrated(warmup=100)
>>> z = np.random.default_rng(0).normal(size=3000); z[2500] = 9.0
>>> x = np.full(3000, 7.0)
>>> u = cp.surprise(x, z)
>>> int(np.argmax(u)), bool(u[2500] > 5), bool(cp.surprise(x[:1] + 0.5, z[:1])[0] == 0)
(2500, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from rushhour.detect.likelihood import two_sided_surprise

#: state layout: buckets seen, EWMA episode rate, previous bucket beyond 3σ (signed), all values
#: counts so far, length of the current run beyond 3σ, sign of the last sustained run, buckets since
_N, _RATE, _PREV, _COUNTS, _RUN, _SIGN, _SINCE = 0, 1, 2, 3, 4, 5, 6
N_STATE = 7
EXCEED = 3.0


def initial_state() -> np.ndarray:
    """The state of a series that has seen nothing yet."""
    st = np.zeros(N_STATE)
    st[_COUNTS] = 1.0
    st[_SINCE] = np.inf
    return st


@dataclass
class Calibrated:
    """Config (``alpha``, ``max_rate``, ``warmup``, ``penalty``) and state (``state_``)."""

    alpha: float = 0.001
    max_rate: float = 0.012
    warmup: int = 4320
    penalty: float = 2.0
    #: a run beyond 3σ this long is a sustained deviation (a level shift the baseline's offset then
    #: absorbs) ...
    sustained: int = 10
    #: ... and a deviation of the other sign within this many buckets after it is the return to
    #: normal, not a new incident: the path stays closed for it
    returns: int = 600
    state_: np.ndarray | None = field(default=None, repr=False)

    def surprise(self, values: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``-log10`` tail probability per bucket (0 while the path is closed), learning as it goes."""
        if self.state_ is None:
            self.state_ = initial_state()
        x = np.asarray(values, dtype=float)
        return self.surprise_rows(x, z, np.zeros(x.shape[0], dtype=np.int64), self.state_[None])

    def surprise_rows(
        self,
        values: np.ndarray,
        z: np.ndarray,
        rows: np.ndarray,
        states: np.ndarray,
        judged: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`surprise` for many series at once: bucket ``i`` belongs to the series whose state
        is ``states[rows[i]]`` (rows of :func:`initial_state`); each series' buckets in time order.

        ``judged`` (optional, per bucket): another reference (:mod:`rushhour.detect.rhythm`) judged
        whether the bucket is normal; there the return rule does not apply (the caller has already
        set aside the buckets that reference found normal)."""
        params = np.array(
            [self.alpha, self.max_rate, self.warmup, self.sustained, self.returns], dtype=float
        )
        zz = np.asarray(z, dtype=float)
        x = np.asarray(values, dtype=float)
        skip = np.zeros(x.shape[0], dtype=np.bool_) if judged is None else judged
        is_open = _gate(x, zz, rows, states, params, np.asarray(skip, dtype=np.bool_))
        u = two_sided_surprise(zz) - self.penalty
        return np.where(is_open, np.maximum(u, 0.0), 0.0)


@nb.njit(cache=True)
def _gate(
    x: np.ndarray,
    z: np.ndarray,
    rows: np.ndarray,
    states: np.ndarray,
    p: np.ndarray,
    judged: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    alpha, max_rate, warmup, sustained, returns = p[0], p[1], p[2], p[3], p[4]
    n = x.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        xi = x[i]
        if np.isnan(xi):
            continue
        st = states[rows[i]]
        if xi < 0 or xi != np.floor(xi):
            st[_COUNTS] = 0.0
        sign = 1.0 if z[i] > 0 else -1.0
        back = sign == -st[_SIGN] and st[_SINCE] < returns and not judged[i]
        out[i] = st[_COUNTS] > 0 and st[_N] >= warmup and st[_RATE] < max_rate and not back
        beyond = abs(z[i]) > EXCEED
        start = 1.0 if beyond and st[_PREV] != sign else 0.0
        a = max(alpha, 1.0 / (st[_N] + 1.0))
        st[_RATE] += a * (start - st[_RATE])
        st[_RUN] = st[_RUN] + 1.0 if beyond and st[_PREV] == sign else (1.0 if beyond else 0.0)
        st[_PREV] = sign if beyond else 0.0
        st[_SINCE] += 1.0
        st[_N] += 1.0
        if st[_RUN] >= sustained:
            st[_SIGN] = sign
            st[_SINCE] = 0.0
    return out
