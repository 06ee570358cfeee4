"""Rhythm: how far traffic lies from its usual level at this time of a weekday (or weekend day).

The seasonal baseline (:mod:`rushhour.detect.seasonal_residual`) forecasts well bucket by bucket,
but it *follows* whatever is gradual: its profiles carry an offset that absorbs a deviation within
about 20 buckets, and its level forecaster (chosen for more than half of 1-minute buckets) trails any
slope. A ramp, or a morning rush hour that never comes, therefore hardly moves its residual. This
path judges each bucket against a reference that absorbs nothing: the profile of the **day class**
(working weekday, Monday to Friday, or weekend day, local time), in 5-minute slots read between
neighbouring slots (as the baseline reads its profiles), learned once per visit of a slot.

What keeps incidents out of the profile (generated traffic has an incident at the same time on
consecutive days often):

* a slot remembers the means of its last three visits; after three visits its value starts as
  their median (with two, the median of the two and the baseline's forecast), so an incident on a
  slot's first visit is not learned as the rhythm; a slot is judged once it has ``min_visits``;
* then the value moves by ``profile_alpha`` of each visit's deviation, winsorized at ``clip`` σ and
  learned at ``outlier_weight`` beyond — unless the previous visit was beyond ``clip`` σ on the same
  side too (the rhythm changed, or the slot had learned an incident): then by ``profile_alpha`` of
  the whole deviation.

A public holiday (``holiday`` flags from the detector's calendar,
:class:`~rushhour.detect.holiday_calendar.HolidayCalendar`) is of the weekend day class: judged
against the weekend profile, and learned into it.

Per bucket, ``z_r = (x - P) / σ`` with ``P`` the profile and ``σ`` the baseline's noise scale (for
count series at least ``min_sigma``, half a count: counts resolve nothing finer, and a forecast of
~0 on a sparse series gives a noise scale of 1e-9 that read every count as 1e10 σ), and
the rhythm signal ``M`` is the EWMA of ``z_r`` (memory ``1/alpha`` buckets): the recent mean
deviation, in σ. The path is open only where reading it is trustworthy, learned causally from
earlier buckets:

* every value so far is a non-negative integer (request counts);
* at least ``warmup`` buckets have been seen;
* the EWMA rate (memory ``1/rate_alpha`` buckets) of *episodes* of ``|M| > exceed`` is below
  ``max_rate`` — a rhythm that does not repeat (most series other than request traffic) gives far
  more of them, and closes the path;
* the share of judged time with ``|M| > exceed`` (the same memory; the plain mean over the first
  ``1/rate_alpha`` judged buckets) is below ``max_share`` — a deviation that lasts is one episode,
  so the rate alone would keep a profile that never fits open with its capped surprise.

While open, the surprise is ``-log10(2·Q(|M|)) - penalty`` (``Q`` the Gaussian upper tail: 5 at
``|M|`` ≈ 5.3), less ``unsure_penalty`` more where the bucket's slot is *unsure* — its value and
its remembered visits lie more than ``unsure`` σ apart, so one of them was an incident (the value
learned one that came on consecutive days, or a recent visit was one) and the slot is not sure
which level is its rhythm; such a slot judges against the nearest level among its value and
those of its remembered visits that the value or another visit supports, a level seen twice — at
most ``cap``: a deviation that lasts (a public holiday, a new level not learned
yet) keeps the capped surprise, and the detector's refractory damping pages it once. While closed
it is 0. ``z_r`` also tells the detector which buckets are normal for the time of day
(:mod:`rushhour.detect.default`).

>>> import numpy as np
>>> day = np.arange(14 * 288) * 300.0 + 4 * 86400  # two weeks of 5-minute buckets from a Monday
>>> rate = 200 + 150 * np.sin(2 * np.pi * day / 86400)
>>> x = np.random.default_rng(0).poisson(rate).astype(float)
>>> x[3500:3530] = np.round(x[3500:3530] * 0.6)  # a partial drop for 2.5 hours
>>> out = Rhythm(bucket_seconds=300, warmup=288).run(day, x, rate, np.sqrt(rate))
>>> bool(out.surprise[3510] > 5), bool(np.all(out.surprise[2000:3400] < 5))
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from rushhour.detect.likelihood import two_sided_surprise
from rushhour.detect.seasonal_residual import DAY

#: day classes: 0 weekend day, 1 working weekday (Monday to Friday, local time)
CLASSES = 2
#: a slot remembers the means of its last ``VISITS`` visits; its value is their median
VISITS = 3
#: state layout: buckets seen, the current visit (sum, count, its slot as ``class * slots + slot``),
#: EWMA of z_r (``M``), all values counts so far, episode rate of ``|M| > exceed``, sign of the
#: previous bucket beyond it (0 if it was not), sum of the visit's noise scales, share of judged
#: time beyond ``exceed``, buckets judged (a snapshot from before the last two existed is padded
#: with zeros)
_N, _VSUM, _VCNT, _VSLOT, _ACC, _COUNTS, _RATE, _PREV, _VSD, _SHARE, _JUDGED = range(11)
N_STATE = 11


@dataclass(frozen=True)
class RhythmOutput:
    """Per bucket: the residual against the day-class profile (``z_r``), the rhythm signal ``M``,
    whether the path was open, its surprise (``-log10`` tail, 0 while closed), and whether the
    bucket's slot was unsure (its value and remembered visits more than ``unsure`` σ apart)."""

    z: np.ndarray
    signal: np.ndarray
    open: np.ndarray
    surprise: np.ndarray
    unsure: np.ndarray


@dataclass
class Rhythm:
    """Configuration of the rhythm path; the state of each series lives in arrays laid out by
    :meth:`initial` (a row per series when stacked)."""

    bucket_seconds: float = 60.0
    alpha: float = 0.1
    warmup: int = 1440
    rate_alpha: float = 0.001
    max_rate: float = 0.006
    exceed: float = 1.0
    penalty: float = 2.0
    cap: float = 10.0
    min_visits: int = 2
    profile_alpha: float = 0.2
    clip: float = 2.0
    outlier_weight: float = 0.35
    min_slot_seconds: float = 300.0
    max_share: float = 0.9
    min_sigma: float = 0.5
    unsure: float = 3.0
    unsure_penalty: float = 2.0
    #: an unsure slot judges against the nearest level of its value and remembered visits that
    #: another of them supports (False: against its value alone)
    nearest: bool = True
    #: judge with the noise scale at the profile's level (the baseline's scaled by its noise model)
    at_profile: bool = True

    @property
    def slot_seconds(self) -> float:
        return max(self.bucket_seconds, self.min_slot_seconds)

    @property
    def slots(self) -> int:
        return int(np.ceil(DAY / self.slot_seconds))

    def initial(self) -> dict[str, np.ndarray]:
        """One series' state before any bucket: scalars, and per day class and slot the means of
        the last visits (NaN while unknown) and the number of visits."""
        st = np.zeros(N_STATE)
        st[_COUNTS] = 1.0
        st[_VSLOT] = -1.0
        profile = np.full((CLASSES, VISITS + 2, self.slots), np.nan, dtype=np.float32)
        profile[:, VISITS] = 0.0
        return {"state": st, "profile": profile}

    @staticmethod
    def upgrade_state(saved: np.ndarray) -> np.ndarray:
        """A series' scalar state from a snapshot of an older layout, in this one: the share of
        time beyond ``exceed`` starts at 0 as if learned over every bucket seen (a snapshot does
        not know it, and a share learned afresh would read its first bucket as all of history)."""
        old = np.asarray(saved, dtype=float)
        if old.shape[0] >= N_STATE:
            return old
        st = np.concatenate([old, np.zeros(N_STATE - old.shape[0])])
        st[_JUDGED] = st[_N]
        return st

    def run(
        self,
        seconds: np.ndarray,
        values: np.ndarray,
        expected: np.ndarray,
        sigma: np.ndarray,
        holiday: np.ndarray | None = None,
        power: np.ndarray | None = None,
    ) -> RhythmOutput:
        """One series from nothing: local wall-clock epoch ``seconds``, ``values``, the baseline's
        forecast and noise scale per bucket, and which buckets fall on a public holiday."""
        init = self.initial()
        x = np.asarray(values, dtype=float)
        rows = np.zeros(x.shape[0], dtype=np.int64)
        st, prof = init["state"][None], init["profile"][None]
        return self.run_rows(seconds, x, expected, sigma, rows, st, prof, holiday, power)

    def run_rows(
        self,
        seconds: np.ndarray,
        values: np.ndarray,
        expected: np.ndarray,
        sigma: np.ndarray,
        rows: np.ndarray,
        state: np.ndarray,
        profile: np.ndarray,
        holiday: np.ndarray | None = None,
        power: np.ndarray | None = None,
    ) -> RhythmOutput:
        """:meth:`run` for many series at once: bucket ``i`` belongs to the series whose state is
        ``state[rows[i]]`` and ``profile[rows[i]]`` (moved on in place); each series' buckets in
        time order. Buckets where ``holiday`` is True (a public holiday, local calendar) are of
        the weekend day class."""
        slot = self.slot_seconds
        secs = np.asarray(seconds, dtype=float)
        # the epoch was a Thursday: Monday is 0
        weekday = np.mod(np.floor(secs / DAY) + 3, 7)
        working = weekday < 5
        if holiday is not None:
            working &= ~np.asarray(holiday, dtype=bool)
        cls = working.astype(np.int64)
        s = (np.mod(secs, DAY) // slot).astype(np.int64)
        width = min(self.bucket_seconds, slot)
        phase = (np.mod(secs, slot) + width / 2) / slot - 0.5
        params = np.array(
            [
                self.alpha,
                self.warmup,
                self.rate_alpha,
                self.max_rate,
                self.exceed,
                self.min_visits,
                self.profile_alpha,
                self.clip,
                self.outlier_weight,
                self.max_share,
                self.min_sigma,
                self.unsure if self.nearest else np.inf,
            ]
        )
        pw = np.zeros(secs.shape[0]) if power is None or not self.at_profile else power
        z, sig, is_open, spread = _kernel(
            np.asarray(values, dtype=float),
            np.asarray(expected, dtype=float),
            np.asarray(sigma, dtype=float),
            np.asarray(pw, dtype=float),
            cls,
            s,
            phase,
            rows,
            state,
            profile,
            params,
        )
        u = two_sided_surprise(sig) - self.penalty
        unsure = spread > self.unsure
        u = np.where(unsure, u - self.unsure_penalty, u)
        u = np.where(is_open, np.clip(u, 0.0, self.cap), 0.0)
        return RhythmOutput(z, sig, is_open, u, unsure)


@nb.njit(cache=True)
def _med3(a: float, b: float, c: float) -> float:  # pragma: no cover - compiled
    return max(min(a, b), min(max(a, b), c))


@nb.njit(cache=True)
def _slot_value(table: np.ndarray, s: int, guess: float) -> float:  # pragma: no cover - compiled
    # the median of the last visits' means; with two visits, the baseline's forecast ``guess``
    # votes too (NaN: fewer visits than that, or no forecast)
    n = table[VISITS, s]
    if n >= VISITS:
        return float(table[VISITS + 1, s])
    if n == 2:
        a, b = float(table[0, s]), float(table[1, s])
        return 0.5 * (a + b) if np.isnan(guess) else _med3(a, b, guess)
    return float(table[0, s]) if n == 1 else np.nan


@nb.njit(cache=True)
def _read(table: np.ndarray, s: int, phase: float, guess: float) -> float:
    # pragma: no cover - compiled
    # between the bucket's slot and its neighbour, as the baseline reads its profiles
    v = _slot_value(table, s, guess)
    if phase == 0.0 or np.isnan(v):
        return v
    m = table.shape[1]
    u = _slot_value(table, (s + 1) % m if phase > 0 else (s - 1) % m, guess)
    return v if np.isnan(u) else v + abs(phase) * (u - v)


@nb.njit(cache=True)
def _spread(table: np.ndarray, s: int) -> float:  # pragma: no cover - compiled
    # how far apart the slot's value and its remembered visits lie (0 before it has them all)
    if table[VISITS, s] < VISITS:
        return 0.0
    v = float(table[VISITS + 1, s])
    lo, hi = v, v
    for k in range(VISITS):
        m = float(table[k, s])
        lo, hi = min(lo, m), max(hi, m)
    return hi - lo


@nb.njit(cache=True)
def _nearest_supported(
    table: np.ndarray, s: int, x: float, ref: float, tol: float
) -> float:  # pragma: no cover - compiled
    # an unsure slot's reference: the level nearest ``x`` among its reading ``ref`` and its
    # remembered visits that the slot's value or another visit lies within ``tol`` of (a level
    # seen on two visits is a rhythm the slot may have; one seen once may be an incident)
    v = float(table[VISITS + 1, s])
    best = ref
    for k in range(VISITS):
        c = float(table[k, s])
        if abs(x - c) >= abs(x - best):
            continue
        seen = abs(c - v) <= tol
        for j in range(VISITS):
            seen = seen or (j != k and abs(c - float(table[j, s])) <= tol)
        if seen:
            best = c
    return best


@nb.njit(cache=True)
def _fold(
    profile: np.ndarray, st: np.ndarray, slots: int, p: np.ndarray
) -> None:  # pragma: no cover - compiled
    # the finished visit's mean takes the place of the oldest one remembered
    a_prof, clip, w_out = p[6], p[7], p[8]
    key = int(st[_VSLOT])
    table = profile[key // slots]
    s = key % slots
    n = int(table[VISITS, s])
    mean = st[_VSUM] / st[_VCNT]
    if n == VISITS - 1:
        a, b = float(table[0, s]), float(table[1, s])
        table[VISITS + 1, s] = _med3(a, b, mean)
    elif n >= VISITS:
        v = float(table[VISITS + 1, s])
        prev = float(table[(n - 1) % VISITS, s])
        lim = clip * st[_VSD] / st[_VCNT] if st[_VSD] > 0 else np.inf
        dv = mean - v
        # beyond the limit, learned at the outliers' weight, unless the previous visit was beyond
        # it on the same side too: then the rhythm changed (or the slot learned an incident)
        again = abs(prev - v) > lim and (prev - v) * dv > 0
        if again:
            table[VISITS + 1, s] = v + a_prof * dv
        else:
            w = 1.0 if abs(dv) <= lim else w_out
            table[VISITS + 1, s] = v + a_prof * w * min(max(dv, -lim), lim)
    table[n % VISITS, s] = mean
    table[VISITS, s] = n + 1
    st[_VSUM] = 0.0
    st[_VCNT] = 0.0
    st[_VSD] = 0.0


@nb.njit(cache=True)
def _kernel(
    x: np.ndarray,
    expected: np.ndarray,
    sigma: np.ndarray,
    power: np.ndarray,
    cls: np.ndarray,
    slot: np.ndarray,
    phase: np.ndarray,
    rows: np.ndarray,
    states: np.ndarray,
    profiles: np.ndarray,
    p: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    alpha, warmup, a_rate, max_rate, exceed, min_visits = p[0], p[1], p[2], p[3], p[4], p[5]
    max_share, min_sigma, unsure = p[9], p[10], p[11]
    n = x.shape[0]
    slots = profiles.shape[3]
    z = np.full(n, np.nan)
    sig = np.full(n, np.nan)
    is_open = np.zeros(n, dtype=np.bool_)
    spread = np.zeros(n)
    for i in range(n):
        xi = x[i]
        if np.isnan(xi):
            continue
        st = states[rows[i]]
        c, s = cls[i], slot[i]
        table = profiles[rows[i], c]
        key = c * slots + s
        if st[_VCNT] > 0 and int(st[_VSLOT]) != key:
            _fold(profiles[rows[i]], st, slots, p)
        if xi < 0 or xi != np.floor(xi):
            st[_COUNTS] = 0.0
        sd = sigma[i]
        ref = _read(table, s, phase[i], expected[i])
        if power[i] > 0 and ref > 0 and expected[i] > 0:
            # the noise at the profile's level: the forecast may have followed the incident
            sd *= (ref / expected[i]) ** power[i]
        if not np.isnan(ref) and sd > 0 and table[VISITS, s] >= min_visits:
            # counts resolve nothing finer than one count: a noise scale under half a count (a
            # forecast of ~0 on a sparse series) would read every count as a huge deviation
            scale = max(sd, min_sigma) if st[_COUNTS] > 0 else sd
            spread[i] = _spread(table, s) / scale
            if spread[i] > unsure:
                ref = _nearest_supported(table, s, xi, ref, unsure * scale)
            zi = (xi - ref) / scale
            z[i] = zi
            st[_ACC] += alpha * (zi - st[_ACC])
            si = st[_ACC]
            sig[i] = si
            is_open[i] = (
                st[_COUNTS] > 0
                and st[_N] >= warmup
                and st[_RATE] < max_rate
                and st[_SHARE] < max_share
            )
            # episodes of |M| > exceed (a run counts once), and the share of judged time beyond
            # it (a deviation that lasts is one episode, but it fills the time)
            sign = 1.0 if si > 0 else -1.0
            beyond = abs(si) > exceed
            start = 1.0 if beyond and st[_PREV] != sign else 0.0
            st[_RATE] += max(a_rate, 1.0 / (st[_N] + 1.0)) * (start - st[_RATE])
            st[_PREV] = sign if beyond else 0.0
            st[_JUDGED] += 1.0
            w = max(a_rate, 1.0 / st[_JUDGED])
            st[_SHARE] += w * ((1.0 if beyond else 0.0) - st[_SHARE])
        st[_VSUM] += xi
        if sd > 0:
            st[_VSD] += sd
        st[_VCNT] += 1.0
        st[_VSLOT] = key
        st[_N] += 1.0
    return z, sig, is_open, spread
