"""Numba kernels of the random cut forest: tree insert/delete, the weighted reservoir, scoring.

The forest lives in a handful of flat arrays (see :class:`rushhour.detect.rcf.forest.ForestArrays`):

* a point store ``pts`` shared by all trees, with reference counts, so a point sampled by 40 trees is
  stored once;
* per tree, internal nodes ``0..M-1`` (children, cut dimension, cut value, mass, bounding box) and
  leaves ``M..M+S-1`` (point index, mass); a child reference ``c`` is internal when ``c < M``, a leaf
  otherwise, ``-1`` is empty;
* per tree, a max-heap of sampler weights (the time-decayed weighted reservoir of AWS's
  ``CompactSampler``: weight ``-seq·λ + log(-log U)``, the smallest weights stay);
* per tree, a splitmix64 random state, so a saved forest continues exactly where it stopped.

Scoring follows AWS randomcutforest-core's ``AbstractScalarScoreVisitor`` and
``AbstractAttributionVisitor``: walk to the leaf the query would reach, then go back up mixing
``scoreUnseen(depth) = 1/(depth+1)`` with the probability that a random cut of the node's box,
extended by the query, separates the query; a leaf equal to the query scores
``damp · scoreSeen``; the tree's result is normalised by ``log2(1 + treeMass)``.
All kernels are compiled with ``cache=True`` so the compilation cost is paid once per machine.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from rushhour.detect.rcf.layout import META_FREE_N, META_SEQ, META_WBASE
from rushhour.detect.rcf.sampler import heap_pop, heap_push, initial_accept, rebase

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0

# rebase sampler weights when the sequence has moved this far past the base (keeps float32 exact)
_REBASE_AFTER = 1 << 16


# Kernels that take many arrays and never allocate are compiled without Numba's reference counting:
# with it, every call (and every inlined helper taking an array) pays atomic incref/decref pairs on
# each array argument, which measured 10-40x slower tree inserts and scores on this workload.
_no_refcount = njit(cache=True, _nrt=False)  # type: ignore[call-overload]


@njit(cache=True, inline="always")
def _uniform(rng: np.ndarray, t: int) -> float:
    """splitmix64 step for tree ``t``: a double in [0, 1)."""
    z = rng[t] + _GOLDEN
    rng[t] = z
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return float(z >> _S11) * _INV53


@njit(cache=True)
def seed_states(seed: int, n: int) -> np.ndarray:
    """Independent per-tree random states derived from one seed."""
    out = np.empty(n, dtype=np.uint64)
    s = np.empty(1, dtype=np.uint64)
    s[0] = np.uint64(seed & 0x7FFFFFFFFFFFFFFF)
    for i in range(n):
        _uniform(s, 0)
        z = s[0]
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        out[i] = z ^ (z >> _S31)
    return out


# -- point store --------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _release(pref: np.ndarray, pfree: np.ndarray, meta: np.ndarray, p: int) -> None:
    pref[p] -= 1
    if pref[p] == 0:
        pfree[meta[META_FREE_N]] = p
        meta[META_FREE_N] += 1


# -- boxes --------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _box_lo(bmin, pts, lpt, t, c, M, d):
    if c < M:
        return bmin[t, c, d]
    return pts[lpt[t, c - M], d]


@njit(cache=True, inline="always")
def _box_hi(bmax, pts, lpt, t, c, M, d):
    if c < M:
        return bmax[t, c, d]
    return pts[lpt[t, c - M], d]


@njit(cache=True, inline="always")
def _mass(nmass, lmass, t, c, M):
    if c < M:
        return int(nmass[t, c])
    return int(lmass[t, c - M])


# -- tree insert ----------------------------------------------------------------------------------
@_no_refcount
def tree_insert(
    t,
    p,
    pts,
    root,
    left,
    right,
    cdim,
    cval,
    nmass,
    bmin,
    bmax,
    lpt,
    lmass,
    ifree,
    ifn,
    lfree,
    lfn,
    rng,
    path,
):
    """Insert store point ``p`` into tree ``t``; returns the store index now referenced (an equal
    point already in the tree is reused, its leaf mass grows)."""
    M = left.shape[1]
    D = pts.shape[1]
    q = pts[p]
    node = root[t]
    if node < 0:
        lfn[t] -= 1
        leaf = lfree[t, lfn[t]]
        lpt[t, leaf] = p
        lmass[t, leaf] = 1
        root[t] = M + leaf
        return p
    depth = 0
    parent = -1
    while True:
        # the node's box, merged with q, is where the random cut is drawn (AWS randomCut)
        rsum = 0.0
        for d in range(D):
            lo = _box_lo(bmin, pts, lpt, t, node, M, d)
            hi = _box_hi(bmax, pts, lpt, t, node, M, d)
            if q[d] < lo:
                lo = q[d]
            elif q[d] > hi:
                hi = q[d]
            rsum += float(hi) - float(lo)
        if node >= M and rsum <= 0.0:
            # q equals the leaf point: a duplicate, the leaf gets heavier
            lmass[t, node - M] += 1
            for i in range(depth):
                nmass[t, path[i]] += 1
            return lpt[t, node - M]
        sep = False
        cut_d = -1
        cut_v = np.float32(0.0)
        if rsum > 0.0:
            breakpoint = _uniform(rng, t) * rsum
            last = -1
            for d in range(D):
                lo = _box_lo(bmin, pts, lpt, t, node, M, d)
                hi = _box_hi(bmax, pts, lpt, t, node, M, d)
                mlo = float(min(lo, q[d]))
                mhi = float(max(hi, q[d]))
                gap = mhi - mlo
                if gap > 0.0:
                    last = d
                    if breakpoint <= gap:
                        cut_d = d
                        cut_v = np.float32(mlo + breakpoint)
                        if cut_v >= mhi:
                            cut_v = np.nextafter(np.float32(mhi), np.float32(mlo))
                        break
                    breakpoint -= gap
            if cut_d < 0:  # rounding pushed the breakpoint past the end
                cut_d = last
                cut_v = np.float32(min(_box_lo(bmin, pts, lpt, t, node, M, last), q[last]))
            blo = _box_lo(bmin, pts, lpt, t, node, M, cut_d)
            bhi = _box_hi(bmax, pts, lpt, t, node, M, cut_d)
            sep = (q[cut_d] <= cut_v and cut_v < blo) or (q[cut_d] > cut_v and cut_v >= bhi)
            if not sep and node >= M:
                # two distinct points always split; guard float rounding at the box's edge
                for d in range(D):
                    lo = _box_lo(bmin, pts, lpt, t, node, M, d)
                    if lo != q[d]:
                        cut_d = d
                        cut_v = min(lo, q[d])
                        sep = True
                        break
        if sep:
            ifn[t] -= 1
            n = ifree[t, ifn[t]]
            lfn[t] -= 1
            leaf = lfree[t, lfn[t]]
            lpt[t, leaf] = p
            lmass[t, leaf] = 1
            cdim[t, n] = cut_d
            cval[t, n] = cut_v
            nmass[t, n] = _mass(nmass, lmass, t, node, M) + 1
            for d in range(D):
                bmin[t, n, d] = min(_box_lo(bmin, pts, lpt, t, node, M, d), q[d])
                bmax[t, n, d] = max(_box_hi(bmax, pts, lpt, t, node, M, d), q[d])
            if q[cut_d] <= cut_v:
                left[t, n] = M + leaf
                right[t, n] = node
            else:
                left[t, n] = node
                right[t, n] = M + leaf
            if parent < 0:
                root[t] = n
            elif left[t, parent] == node:
                left[t, parent] = n
            else:
                right[t, parent] = n
            for i in range(depth):
                nmass[t, path[i]] += 1
            return p
        # no separation here: q belongs inside this node's subtree; the box grows to hold it
        for d in range(D):
            if q[d] < bmin[t, node, d]:
                bmin[t, node, d] = q[d]
            elif q[d] > bmax[t, node, d]:
                bmax[t, node, d] = q[d]
        path[depth] = node
        depth += 1
        parent = node
        node = left[t, node] if q[cdim[t, node]] <= cval[t, node] else right[t, node]


# -- tree delete --------------------------------------------------------------------------------
@_no_refcount
def tree_delete(
    t,
    p,
    pts,
    root,
    left,
    right,
    cdim,
    cval,
    nmass,
    bmin,
    bmax,
    lpt,
    lmass,
    ifree,
    ifn,
    lfree,
    lfn,
    path,
):
    """Remove one copy of store point ``p`` from tree ``t``. Returns False if it is not there."""
    M = left.shape[1]
    D = pts.shape[1]
    q = pts[p]
    node = root[t]
    depth = 0
    while node >= 0 and node < M:
        path[depth] = node
        depth += 1
        node = left[t, node] if q[cdim[t, node]] <= cval[t, node] else right[t, node]
    if node < 0 or lpt[t, node - M] != p:
        return False
    leaf = node - M
    if lmass[t, leaf] > 1:
        lmass[t, leaf] -= 1
        for i in range(depth):
            nmass[t, path[i]] -= 1
        return True
    lfree[t, lfn[t]] = leaf
    lfn[t] += 1
    if depth == 0:
        root[t] = -1
        return True
    par = path[depth - 1]
    sib = right[t, par] if left[t, par] == node else left[t, par]
    ifree[t, ifn[t]] = par
    ifn[t] += 1
    if depth == 1:
        root[t] = sib
        return True
    g = path[depth - 2]
    if left[t, g] == par:
        left[t, g] = sib
    else:
        right[t, g] = sib
    # masses drop and boxes shrink along the remaining path, bottom-up from the children
    for i in range(depth - 2, -1, -1):
        a = path[i]
        nmass[t, a] -= 1
        lc = left[t, a]
        rc = right[t, a]
        for d in range(D):
            bmin[t, a, d] = min(
                _box_lo(bmin, pts, lpt, t, lc, M, d), _box_lo(bmin, pts, lpt, t, rc, M, d)
            )
            bmax[t, a, d] = max(
                _box_hi(bmax, pts, lpt, t, lc, M, d), _box_hi(bmax, pts, lpt, t, rc, M, d)
            )
    return True


# -- scoring ------------------------------------------------------------------------------------
@_no_refcount
def tree_score(t, q, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt, lmass, path):
    """AWS's anomaly score of ``q`` in tree ``t`` (normalised by log2(1 + treeMass))."""
    M = left.shape[1]
    D = pts.shape[1]
    node = root[t]
    if node < 0:
        return 0.0
    tree_mass = _mass(nmass, lmass, t, node, M)
    depth = 0
    while node < M:
        path[depth] = node
        depth += 1
        node = left[t, node] if q[cdim[t, node]] <= cval[t, node] else right[t, node]
    leaf = node - M
    lp = pts[lpt[t, leaf]]
    equal = True
    for d in range(D):
        if lp[d] != q[d]:
            equal = False
            break
    lm = float(lmass[t, leaf])
    if equal:
        score = (1.0 - lm / (2.0 * tree_mass)) / (depth + math.log2(lm + 1.0))
        return score * math.log2(tree_mass + 1.0)
    score = 1.0 / (depth + 1.0)
    for i in range(depth - 1, -1, -1):
        a = path[i]
        new_range = 0.0
        diff = 0.0
        for d in range(D):
            lo = float(bmin[t, a, d])
            hi = float(bmax[t, a, d])
            x = float(q[d])
            if x > hi:
                diff += x - hi
                new_range += x - lo
            elif x < lo:
                diff += lo - x
                new_range += hi - x
            else:
                new_range += hi - lo
        if diff <= 0.0:
            break
        prob = diff / new_range
        score = prob / (i + 1.0) + (1.0 - prob) * score
    return score * math.log2(tree_mass + 1.0)


@_no_refcount
def tree_attribution(
    t,
    q,
    pts,
    root,
    left,
    right,
    cdim,
    cval,
    nmass,
    bmin,
    bmax,
    lpt,
    lmass,
    path,
    hi_out,
    lo_out,
    shadow_lo,
    shadow_hi,
    hi_v,
    lo_v,
):
    """AWS's DiVector attribution of ``q`` in tree ``t``, added into ``hi_out``/``lo_out``.

    The sum over dimensions of high + low equals :func:`tree_score`.
    """
    M = left.shape[1]
    D = pts.shape[1]
    node = root[t]
    if node < 0:
        return
    tree_mass = _mass(nmass, lmass, t, node, M)
    depth = 0
    while node < M:
        path[depth] = node
        depth += 1
        node = left[t, node] if q[cdim[t, node]] <= cval[t, node] else right[t, node]
    leaf = node - M
    lp = pts[lpt[t, leaf]]
    norm = math.log2(tree_mass + 1.0)
    equal = True
    for d in range(D):
        if lp[d] != q[d]:
            equal = False
            break
    lm = float(lmass[t, leaf])
    if equal:
        # a duplicate: the point counts as seen; spread the mass by the counterfactual boxes of
        # the siblings ("what if the point had not been inserted"), then rescale to the score
        saved = (1.0 - lm / (2.0 * tree_mass)) / (depth + math.log2(lm + 1.0))
        for d in range(D):
            hi_v[d] = saved / (2.0 * D)
            lo_v[d] = saved / (2.0 * D)
        child = node
        for i in range(depth - 1, -1, -1):
            a = path[i]
            sib = right[t, a] if left[t, a] == child else left[t, a]
            for d in range(D):
                slo = _box_lo(bmin, pts, lpt, t, sib, M, d)
                shi = _box_hi(bmax, pts, lpt, t, sib, M, d)
                if i == depth - 1:
                    shadow_lo[d] = slo
                    shadow_hi[d] = shi
                else:
                    shadow_lo[d] = min(shadow_lo[d], slo)
                    shadow_hi[d] = max(shadow_hi[d], shi)
            new_range = 0.0
            diff = 0.0
            for d in range(D):
                x = float(q[d])
                lo = float(shadow_lo[d])
                hi = float(shadow_hi[d])
                new_range += max(hi, x) - min(lo, x)
                diff += max(x - hi, 0.0) + max(lo - x, 0.0)
            prob = diff / new_range if new_range > 0.0 else 0.0
            if prob > 0.0:
                unseen = 1.0 / (i + 1.0)
                for d in range(D):
                    x = float(q[d])
                    hi_v[d] = (
                        max(x - float(shadow_hi[d]), 0.0) / new_range * unseen
                        + (1.0 - prob) * hi_v[d]
                    )
                    lo_v[d] = (
                        max(float(shadow_lo[d]) - x, 0.0) / new_range * unseen
                        + (1.0 - prob) * lo_v[d]
                    )
            child = a
            if prob <= 0.0:
                break
        total = 0.0
        for d in range(D):
            total += hi_v[d] + lo_v[d]
        scale = saved / total if total > 0.0 else 0.0
        for d in range(D):
            hi_out[d] += hi_v[d] * scale * norm
            lo_out[d] += lo_v[d] * scale * norm
        return
    saved = 1.0 / (depth + 1.0)
    span = 0.0
    for d in range(D):
        span += abs(float(q[d]) - float(lp[d]))
    for d in range(D):
        x = float(q[d])
        hi_v[d] = saved * max(x - float(lp[d]), 0.0) / span
        lo_v[d] = saved * max(float(lp[d]) - x, 0.0) / span
    for i in range(depth - 1, -1, -1):
        a = path[i]
        new_range = 0.0
        diff = 0.0
        for d in range(D):
            x = float(q[d])
            lo = float(bmin[t, a, d])
            hi = float(bmax[t, a, d])
            new_range += max(hi, x) - min(lo, x)
            diff += max(x - hi, 0.0) + max(lo - x, 0.0)
        if diff <= 0.0:
            break
        prob = diff / new_range
        unseen = 1.0 / (i + 1.0)
        for d in range(D):
            x = float(q[d])
            hi_v[d] = (
                max(x - float(bmax[t, a, d]), 0.0) / new_range * unseen + (1.0 - prob) * hi_v[d]
            )
            lo_v[d] = (
                max(float(bmin[t, a, d]) - x, 0.0) / new_range * unseen + (1.0 - prob) * lo_v[d]
            )
    for d in range(D):
        hi_out[d] += hi_v[d] * norm
        lo_out[d] += lo_v[d] * norm


# -- the streaming step ---------------------------------------------------------------------------
@njit(cache=True)
def forest_step(
    X,
    mode,
    scores,
    attr_hi,
    attr_lo,
    pts,
    pref,
    pfree,
    meta,
    root,
    left,
    right,
    cdim,
    cval,
    nmass,
    bmin,
    bmax,
    lpt,
    lmass,
    ifree,
    ifn,
    lfree,
    lfn,
    sw,
    spt,
    sn,
    rng,
    lam,
    initial_fraction,
):
    """Score (mode 2; 3 adds attribution) then update (modes 1-3) each row of ``X`` in turn.

    Returns the number of rows processed: fewer than ``len(X)`` when the point store is full and the
    caller must grow it before calling again with the remaining rows.
    """
    F = root.shape[0]
    S = sw.shape[1]
    D = X.shape[1]
    path = np.empty(S + 2, dtype=np.int64)
    shadow_lo = np.empty(D, dtype=np.float32)
    shadow_hi = np.empty(D, dtype=np.float32)
    hi_v = np.empty(D)
    lo_v = np.empty(D)
    for r in range(X.shape[0]):
        m = mode[r]
        if m == 0:
            continue
        if meta[META_FREE_N] == 0:
            return r
        q = X[r]
        if m >= 2:
            total = 0.0
            if m == 3:
                for d in range(D):
                    attr_hi[r, d] = 0.0
                    attr_lo[r, d] = 0.0
                for t in range(F):
                    tree_attribution(
                        t,
                        q,
                        pts,
                        root,
                        left,
                        right,
                        cdim,
                        cval,
                        nmass,
                        bmin,
                        bmax,
                        lpt,
                        lmass,
                        path,
                        attr_hi[r],
                        attr_lo[r],
                        shadow_lo,
                        shadow_hi,
                        hi_v,
                        lo_v,
                    )
                for d in range(D):
                    attr_hi[r, d] /= F
                    attr_lo[r, d] /= F
                    total += attr_hi[r, d] + attr_lo[r, d]
                scores[r] = total
            else:
                for t in range(F):
                    total += tree_score(
                        t,
                        q,
                        pts,
                        root,
                        left,
                        right,
                        cdim,
                        cval,
                        nmass,
                        bmin,
                        bmax,
                        lpt,
                        lmass,
                        path,
                    )
                scores[r] = total / F
        # update: the new point enters the store once, every accepting tree references it
        if meta[META_SEQ] - meta[META_WBASE] >= _REBASE_AFTER:
            rebase(sw, sn, meta, lam)
        meta[META_FREE_N] -= 1
        p = pfree[meta[META_FREE_N]]
        pref[p] = 0
        for d in range(D):
            pts[p, d] = q[d]
        rel = float(meta[META_SEQ] - meta[META_WBASE])
        for t in range(F):
            u = _uniform(rng, t)
            while u == 0.0:
                u = _uniform(rng, t)
            w = np.float32(-rel * lam + math.log(-math.log(u)))
            n = sn[t]
            initial = n < S and _uniform(rng, t) < initial_accept(n, S, initial_fraction)
            if not initial and (n == 0 or w >= sw[t, 0]):
                continue
            if not initial:
                ev = heap_pop(sw, spt, sn, t)
                tree_delete(
                    t,
                    ev,
                    pts,
                    root,
                    left,
                    right,
                    cdim,
                    cval,
                    nmass,
                    bmin,
                    bmax,
                    lpt,
                    lmass,
                    ifree,
                    ifn,
                    lfree,
                    lfn,
                    path,
                )
                _release(pref, pfree, meta, ev)
            used = tree_insert(
                t,
                p,
                pts,
                root,
                left,
                right,
                cdim,
                cval,
                nmass,
                bmin,
                bmax,
                lpt,
                lmass,
                ifree,
                ifn,
                lfree,
                lfn,
                rng,
                path,
            )
            pref[used] += 1
            heap_push(sw, spt, sn, t, w, used)
        if pref[p] == 0:
            pfree[meta[META_FREE_N]] = p
            meta[META_FREE_N] += 1
        meta[META_SEQ] += 1
    return X.shape[0]


@njit(cache=True)
def insert_points(
    t,
    idx,
    pts,
    pref,
    root,
    left,
    right,
    cdim,
    cval,
    nmass,
    bmin,
    bmax,
    lpt,
    lmass,
    ifree,
    ifn,
    lfree,
    lfn,
    rng,
    spt,
):
    """Build tree ``t`` from store points ``idx`` (the batch forest's fit)."""
    path = np.empty(lpt.shape[1] + 2, dtype=np.int64)
    for i in range(idx.shape[0]):
        used = tree_insert(
            t,
            idx[i],
            pts,
            root,
            left,
            right,
            cdim,
            cval,
            nmass,
            bmin,
            bmax,
            lpt,
            lmass,
            ifree,
            ifn,
            lfree,
            lfn,
            rng,
            path,
        )
        pref[used] += 1
        spt[t, i] = used


@njit(cache=True)
def score_rows(X, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt, lmass):
    """Scores of the rows of ``X`` against a fixed forest, on one thread (for a few rows)."""
    F = root.shape[0]
    path = np.empty(lpt.shape[1] + 2, dtype=np.int64)
    out = np.zeros(X.shape[0])
    for r in range(X.shape[0]):
        total = 0.0
        for t in range(F):
            total += tree_score(
                t, X[r], pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt, lmass, path
            )
        out[r] = total / F
    return out


@njit(cache=True, parallel=True)
def attribute_many(X, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt, lmass):
    """Attributions (high, low) of all rows of ``X`` against a fixed forest (no update)."""
    N = X.shape[0]
    D = X.shape[1]
    F = root.shape[0]
    S = lpt.shape[1]
    hi = np.zeros((N, D))
    lo = np.zeros((N, D))
    for r in prange(N):
        path = np.empty(S + 2, dtype=np.int64)
        shadow_lo = np.empty(D, dtype=np.float32)
        shadow_hi = np.empty(D, dtype=np.float32)
        hi_v = np.empty(D)
        lo_v = np.empty(D)
        for t in range(F):
            tree_attribution(
                t,
                X[r],
                pts,
                root,
                left,
                right,
                cdim,
                cval,
                nmass,
                bmin,
                bmax,
                lpt,
                lmass,
                path,
                hi[r],
                lo[r],
                shadow_lo,
                shadow_hi,
                hi_v,
                lo_v,
            )
        for d in range(D):
            hi[r, d] /= F
            lo[r, d] /= F
    return hi, lo
