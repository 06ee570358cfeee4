"""The time-decayed weighted reservoir of each tree (AWS ``CompactSampler`` semantics).

Each arriving point gets the weight ``-seq·λ + log(-log U)`` with ``λ = 1/timeDecay`` and ``U``
uniform; the sampler keeps the ``subSampleSize`` points with the *smallest* weights in a max-heap, so a
new point replaces the heaviest one when it is lighter. Older points have larger weights (their
``-seq·λ`` is less negative) and are the likelier to leave: the sample is biased towards recent data
with an effective memory of about ``timeDecay`` records. While the heap fills, points are accepted
outright until ``initial_fraction`` of it is full, then with a probability that falls linearly to 0.

Weights are float32 relative to a base sequence index that moves forward from time to time
(:func:`rebase`), so they stay exact however long the stream runs.

>>> initial_accept(10, 256, 0.125), initial_accept(256, 256, 0.125)
(1.0, 0.0)
"""

from __future__ import annotations

from numba import njit

from rushhour.detect.rcf.layout import META_SEQ, META_WBASE


@njit(cache=True)
def initial_accept(n: int, capacity: int, initial_fraction: float) -> float:
    """Probability of taking a point outright while the heap holds ``n`` of ``capacity``."""
    fill = n / capacity
    if fill < initial_fraction:
        return 1.0
    if initial_fraction >= 1.0:
        return 0.0
    return max(0.0, 1.0 - (fill - initial_fraction) / (1.0 - initial_fraction))


@njit(cache=True, inline="always")
def heap_push(sw, spt, sn, t, w, p):
    i = sn[t]
    sn[t] += 1
    while i > 0:
        par = (i - 1) >> 1
        if sw[t, par] >= w:
            break
        sw[t, i] = sw[t, par]
        spt[t, i] = spt[t, par]
        i = par
    sw[t, i] = w
    spt[t, i] = p


@njit(cache=True, inline="always")
def heap_pop(sw, spt, sn, t):
    top = spt[t, 0]
    sn[t] -= 1
    n = sn[t]
    w = sw[t, n]
    p = spt[t, n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and sw[t, c + 1] > sw[t, c]:
            c += 1
        if sw[t, c] <= w:
            break
        sw[t, i] = sw[t, c]
        spt[t, i] = spt[t, c]
        i = c
    if n > 0:
        sw[t, i] = w
        spt[t, i] = p
    return top


@njit(cache=True)
def rebase(sw, sn, meta, lam):
    shift = (meta[META_SEQ] - meta[META_WBASE]) * lam
    for t in range(sw.shape[0]):
        for i in range(sn[t]):
            sw[t, i] = sw[t, i] + shift
    meta[META_WBASE] = meta[META_SEQ]
