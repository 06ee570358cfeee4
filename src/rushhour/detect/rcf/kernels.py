"""Numba kernels of the random cut forest: tree insert/delete, the weighted reservoir, scoring.

The forest lives in a handful of flat arrays (see :class:`rushhour.detect.rcf.forest.ForestArrays`):

* a point store shared by all trees, so a point sampled by 40 trees is stored once. It holds records, and a point is ``shingle`` consecutive records (``pts`` is the
  strided view of the points over them), so overlapping shingles share their values; records no
  point covers any more are squeezed out when the store fills (:func:`store_compact`);
* per tree, internal nodes ``0..M-1`` (children, cut dimension, cut value, mass) and leaves
  ``M..M+S-1`` (point index, mass); a child reference ``c`` is internal when ``c < M``, a leaf
  otherwise, ``-1`` is empty. Free node and leaf slots form lists threaded through ``left`` and
  ``lpt``;
* bounding boxes cached for internal slots ``0..K-1`` only. A node whose mass reaches the heavy
  threshold moves into a cached slot when one is free (and back out when its mass halves), so the
  top of each tree has its boxes at hand while the light subtrees below recompute theirs from their
  few leaves when a walk needs them (AWS's ``boundingBoxCacheFraction``, with the cache spent where
  it saves the most). Scores are the same whatever ``K`` is: only the time to get a box changes;
* per tree, a max-heap of sampler weights (the time-decayed weighted reservoir of AWS's
  ``CompactSampler``: weight ``-seq·λ + log(-log U)``, the smallest weights stay), holding leaf
  slots;
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

from rushhour.detect.rcf.layout import (
    META_END,
    META_HEAVY,
    META_SEQ,
    META_SHINGLE,
    META_WBASE,
)
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


# -- the point store -----------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _store_room(vals, meta):
    """Whether the store has room for the next record's point."""
    end = meta[META_END]
    return (end + 1 if end > 0 else meta[META_SHINGLE]) <= vals.shape[0]


@njit(cache=True, inline="always")
def _store_put(pts, meta, q):
    """Store the next record's point ``q`` (the caller checked there is room). Its first
    ``shingle - 1`` records are the store's last ones (the previous point's newest), so only the
    newest record is new; the others are written again with the same values."""
    k = meta[META_SHINGLE]
    end = meta[META_END]
    p = end - (k - 1) if end > 0 else 0
    for d in range(q.shape[0]):
        pts[p, d] = q[d]
    meta[META_END] = p + k
    return p


@njit(cache=True)
def store_compact(vals, meta, lpt, spt, sn):
    """Squeeze out the records no sampled point covers (keeping the last ``shingle - 1``, the
    next point's first ones), in order, and move the trees' references with them. Points and
    scores do not change: a point's records stay consecutive. The points in use are found from
    the samplers' leaves here, so the store keeps no reference counts."""
    k = meta[META_SHINGLE]
    end = meta[META_END]
    tail = end - (k - 1) if end > 0 else end
    used = np.zeros(end, dtype=np.bool_)
    for t in range(lpt.shape[0]):
        for i in range(sn[t]):
            used[lpt[t, spt[t, i]]] = True
    new = np.empty(end, dtype=np.int64)
    n = 0
    run = 0  # records left of the newest used point seen
    for i in range(end):
        if used[i]:
            run = k
        if run > 0 or i >= tail:
            new[i] = n
            if n != i:
                for c in range(vals.shape[1]):
                    vals[n, c] = vals[i, c]
            n += 1
        run -= 1
    done = np.zeros(lpt.shape[1], dtype=np.int64)  # tree + 1 once a leaf is moved (duplicates
    for t in range(lpt.shape[0]):  # share a leaf across sampler entries)
        for i in range(sn[t]):
            leaf = spt[t, i]
            if done[leaf] != t + 1:
                done[leaf] = t + 1
                lpt[t, leaf] = new[lpt[t, leaf]]
    meta[META_END] = n


# -- free lists ---------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _node_take(left, ihead, t, cached):
    """A free internal slot, from the cached list (``cached``) or the other one, either if empty."""
    k = 0 if cached else 1
    if ihead[t, k] < 0:
        k = 1 - k
    n = ihead[t, k]
    ihead[t, k] = left[t, n]
    return n


@njit(cache=True, inline="always")
def _node_give(left, ihead, t, n, K):
    k = 0 if n < K else 1
    left[t, n] = ihead[t, k]
    ihead[t, k] = n


@njit(cache=True, inline="always")
def _leaf_take(lpt, lhead, t):
    leaf = lhead[t]
    lhead[t] = lpt[t, leaf]
    return leaf


@njit(cache=True, inline="always")
def _leaf_give(lpt, lhead, t, leaf):
    lpt[t, leaf] = lhead[t]
    lhead[t] = leaf


# -- cut dimensions and leaf masses ---------------------------------------------------------------
# Points of at most four dimensions pack the cut dimensions of four internal slots in a byte (two
# bits each: ``cdim`` is (F, ceil(M / 4)) uint8); wider points take a byte or two per slot (``cdim``
# is (F, M)). The width of ``cdim`` tells the two apart. A leaf holds at least one copy of its point,
# so ``lmass`` stores the copies minus one: up to 256 samples per tree that fits a byte.
@njit(cache=True, inline="always")
def cut_dim(cdim, t, n, M):
    """The cut dimension of internal slot ``n`` of tree ``t`` (``M`` internal slots per tree)."""
    if cdim.shape[1] < M:
        return (int(cdim[t, n >> 2]) >> ((n & 3) << 1)) & 3
    return int(cdim[t, n])


@njit(cache=True, inline="always")
def set_cut_dim(cdim, t, n, M, d):
    """Make ``d`` the cut dimension of internal slot ``n`` of tree ``t``."""
    if cdim.shape[1] < M:
        shift = (n & 3) << 1
        cdim[t, n >> 2] = (int(cdim[t, n >> 2]) & ~(3 << shift)) | (d << shift)
    else:
        cdim[t, n] = d


@njit(cache=True)
def unpack_cut_dims(cdim, M):
    """Every slot's cut dimension, (F, M) int64 (for checks and conversions)."""
    out = np.empty((cdim.shape[0], M), dtype=np.int64)
    for t in range(cdim.shape[0]):
        for n in range(M):
            out[t, n] = cut_dim(cdim, t, n, M)
    return out


@njit(cache=True)
def pack_cut_dims(dims, cdim):
    """Write the cut dimensions ``dims`` ((F, M), one per slot) into ``cdim``, packed or not."""
    M = dims.shape[1]
    for t in range(dims.shape[0]):
        for n in range(M):
            set_cut_dim(cdim, t, n, M, dims[t, n])


@njit(cache=True, inline="always")
def leaf_mass(lmass, t, leaf):
    """Copies of the point in leaf slot ``leaf`` of tree ``t`` (stored minus one)."""
    return int(lmass[t, leaf]) + 1


# -- boxes --------------------------------------------------------------------------------------
@_no_refcount
def merge_box(t, c, lo, hi, pts, left, right, bmin, bmax, lpt, stack):
    """Grow ``lo``/``hi`` to hold the bounding box of node ``c``: a leaf's point, a cached box, or
    for an uncached node the union over its subtree, down to cached nodes and leaves."""
    M = left.shape[1]
    K = bmin.shape[1]
    D = pts.shape[1]
    stack[0] = c
    sp = 1
    while sp > 0:
        sp -= 1
        n = stack[sp]
        if n >= M:
            p = lpt[t, n - M]
            for d in range(D):
                lo[d] = min(lo[d], pts[p, d])
                hi[d] = max(hi[d], pts[p, d])
        elif n < K:
            for d in range(D):
                lo[d] = min(lo[d], bmin[t, n, d])
                hi[d] = max(hi[d], bmax[t, n, d])
        else:
            stack[sp] = left[t, n]
            stack[sp + 1] = right[t, n]
            sp += 2


@_no_refcount
def node_box(t, c, lo, hi, pts, left, right, bmin, bmax, lpt, stack):
    """The bounding box of node ``c`` into ``lo``/``hi``."""
    for d in range(lo.shape[0]):
        lo[d] = np.inf
        hi[d] = -np.inf
    merge_box(t, c, lo, hi, pts, left, right, bmin, bmax, lpt, stack)


@njit(cache=True, inline="always")
def _mass(nmass, lmass, t, c, M):
    if c < M:
        return int(nmass[t, c])
    return leaf_mass(lmass, t, c - M)


@_no_refcount
def _relocate(t, i, want_cached, path, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt,
              ihead, blo, bhi, stack):  # fmt: skip
    """Move path node ``path[i]`` into a cached slot (``want_cached``) or out of one, when a slot
    of that kind is free; its parent (``path[i - 1]`` or the root) follows it."""
    K = bmin.shape[1]
    a = path[i]
    if ihead[t, 0 if want_cached else 1] < 0:
        return
    b = _node_take(left, ihead, t, want_cached)
    if want_cached:
        node_box(t, a, blo, bhi, pts, left, right, bmin, bmax, lpt, stack)
        for d in range(pts.shape[1]):
            bmin[t, b, d] = blo[d]
            bmax[t, b, d] = bhi[d]
    left[t, b] = left[t, a]
    right[t, b] = right[t, a]
    M = left.shape[1]
    set_cut_dim(cdim, t, b, M, cut_dim(cdim, t, a, M))
    cval[t, b] = cval[t, a]
    nmass[t, b] = nmass[t, a]
    if i == 0:
        root[t] = b
    elif left[t, path[i - 1]] == a:
        left[t, path[i - 1]] = b
    else:
        right[t, path[i - 1]] = b
    _node_give(left, ihead, t, a, K)
    path[i] = b


@_no_refcount
def _recache(t, depth, path, meta, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt,
             ihead, blo, bhi, stack):  # fmt: skip
    """After masses along ``path[:depth]`` changed: heavy nodes into cached slots, light ones out."""
    K = bmin.shape[1]
    heavy = meta[META_HEAVY]
    for i in range(depth):
        a = path[i]
        m = nmass[t, a]
        if a >= K and m >= heavy:
            _relocate(t, i, True, path, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt,
                      ihead, blo, bhi, stack)  # fmt: skip
        elif a < K and 2 * m < heavy:
            _relocate(t, i, False, path, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt,
                      ihead, blo, bhi, stack)  # fmt: skip


@njit(cache=True, inline="always")
def _descend(t, q, node, left, right, cdim, cval, path):
    """Follow ``q``'s cuts from ``node`` down to a leaf, recording the internal nodes in ``path``;
    returns the leaf reference and the number of internal nodes passed."""
    M = left.shape[1]
    depth = 0
    while node < M:
        path[depth] = node
        depth += 1
        node = left[t, node] if q[cut_dim(cdim, t, node, M)] <= cval[t, node] else right[t, node]
    return node, depth


# -- tree insert ----------------------------------------------------------------------------------
@_no_refcount
def _path_boxes(t, q, start, pts, left, right, cdim, cval, bmin, bmax, lpt, path, stack, pbox):
    """The boxes of the nodes on ``q``'s path from ``start`` to a leaf (``path``; the leaf's point
    last) into ``pbox``, bottom-up: a cached box is read, an uncached one is its path child's box
    grown by its other child's. One pass over the siblings instead of one subtree walk per level."""
    M = left.shape[1]
    K = bmin.shape[1]
    D = pts.shape[1]
    node, n = _descend(t, q, start, left, right, cdim, cval, path)
    p = lpt[t, node - M]
    for d in range(D):
        pbox[n, 0, d] = pts[p, d]
        pbox[n, 1, d] = pts[p, d]
    child = node
    for i in range(n - 1, -1, -1):
        a = path[i]
        if a < K:
            for d in range(D):
                pbox[i, 0, d] = bmin[t, a, d]
                pbox[i, 1, d] = bmax[t, a, d]
        else:
            for d in range(D):
                pbox[i, 0, d] = pbox[i + 1, 0, d]
                pbox[i, 1, d] = pbox[i + 1, 1, d]
            sib = right[t, a] if left[t, a] == child else left[t, a]
            merge_box(t, sib, pbox[i, 0], pbox[i, 1], pts, left, right, bmin, bmax, lpt, stack)
        child = a


@_no_refcount
def tree_insert(t, p, q, meta, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt, lmass,
                ihead, lhead, rng, path, stack, blo, bhi, pbox):  # fmt: skip
    """Insert store point ``p`` (its values ``q``, a contiguous copy: ``pts`` rows are strided
    views when the store is shingled) into tree ``t``; returns the leaf slot that now holds it (an
    equal point already in the tree is reused, its leaf mass grows)."""
    M = left.shape[1]
    K = bmin.shape[1]
    D = pts.shape[1]
    track = nmass.shape[1] > 0
    node = root[t]
    if node < 0:
        leaf = _leaf_take(lpt, lhead, t)
        lpt[t, leaf] = p
        lmass[t, leaf] = 0  # one copy
        root[t] = M + leaf
        return leaf
    depth = 0
    parent = -1
    boxed = False  # pbox holds the boxes of the path's remaining (uncached) levels
    while True:
        # the node's box, merged with q, is where the random cut is drawn (AWS randomCut)
        if node < K:
            for d in range(D):
                blo[d] = bmin[t, node, d]
                bhi[d] = bmax[t, node, d]
        elif node >= M:
            for d in range(D):
                blo[d] = pts[lpt[t, node - M], d]
                bhi[d] = blo[d]
        else:
            if not boxed:  # the first uncached level: the boxes of all levels below, in one pass
                _path_boxes(t, q, node, pts, left, right, cdim, cval, bmin, bmax, lpt,
                            path[depth:], stack, pbox[depth:])  # fmt: skip
                boxed = True
            for d in range(D):
                blo[d] = pbox[depth, 0, d]
                bhi[d] = pbox[depth, 1, d]
        rsum = 0.0
        for d in range(D):
            lo = blo[d]
            hi = bhi[d]
            if q[d] < lo:
                lo = q[d]
            elif q[d] > hi:
                hi = q[d]
            rsum += float(hi) - float(lo)
        if node >= M and rsum <= 0.0:
            # q equals the leaf point: a duplicate, the leaf gets heavier
            lmass[t, node - M] += 1  # one more copy
            if track:
                for i in range(depth):
                    nmass[t, path[i]] += 1
                _recache(t, depth, path, meta, pts, root, left, right, cdim, cval, nmass, bmin,
                         bmax, lpt, ihead, blo, bhi, stack)  # fmt: skip
            return node - M
        sep = False
        cut_d = -1
        cut_v = np.float32(0.0)
        if rsum > 0.0:
            breakpoint = _uniform(rng, t) * rsum
            last = -1
            for d in range(D):
                lo = blo[d]
                hi = bhi[d]
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
                cut_v = np.float32(min(blo[last], q[last]))
            sep = (q[cut_d] <= cut_v and cut_v < blo[cut_d]) or (
                q[cut_d] > cut_v and cut_v >= bhi[cut_d]
            )
            if not sep and node >= M:
                # two distinct points always split; guard float rounding at the box's edge
                for d in range(D):
                    if blo[d] != q[d]:
                        cut_d = d
                        cut_v = min(blo[d], q[d])
                        sep = True
                        break
        if sep:
            mass = 1 + (_mass(nmass, lmass, t, node, M) if track else 0)
            n = _node_take(left, ihead, t, track and mass >= meta[META_HEAVY])
            leaf = _leaf_take(lpt, lhead, t)
            lpt[t, leaf] = p
            lmass[t, leaf] = 0  # one copy
            set_cut_dim(cdim, t, n, M, cut_d)
            cval[t, n] = cut_v
            if track:
                nmass[t, n] = mass
            if n < K:
                for d in range(D):
                    bmin[t, n, d] = min(blo[d], q[d])
                    bmax[t, n, d] = max(bhi[d], q[d])
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
            if track:
                for i in range(depth):
                    nmass[t, path[i]] += 1
                _recache(t, depth, path, meta, pts, root, left, right, cdim, cval, nmass, bmin,
                         bmax, lpt, ihead, blo, bhi, stack)  # fmt: skip
            return leaf
        # no separation here: q belongs inside this node's subtree; a cached box grows to hold it
        if node < K:
            for d in range(D):
                if q[d] < bmin[t, node, d]:
                    bmin[t, node, d] = q[d]
                elif q[d] > bmax[t, node, d]:
                    bmax[t, node, d] = q[d]
        path[depth] = node
        depth += 1
        parent = node
        node = left[t, node] if q[cut_dim(cdim, t, node, M)] <= cval[t, node] else right[t, node]


# -- tree delete --------------------------------------------------------------------------------
@_no_refcount
def tree_delete(t, leaf, meta, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt, lmass,
                ihead, lhead, path, stack, blo, bhi):  # fmt: skip
    """Remove one copy of the point in leaf slot ``leaf`` from tree ``t``. Returns False if the
    leaf is not where its point leads."""
    M = left.shape[1]
    K = bmin.shape[1]
    D = pts.shape[1]
    track = nmass.shape[1] > 0
    if root[t] < 0:
        return False
    node, depth = _descend(t, pts[lpt[t, leaf]], root[t], left, right, cdim, cval, path)
    if node != M + leaf:
        return False
    if lmass[t, leaf] > 0:  # more than one copy
        lmass[t, leaf] -= 1
        if track:
            for i in range(depth):
                nmass[t, path[i]] -= 1
            _recache(t, depth, path, meta, pts, root, left, right, cdim, cval, nmass, bmin, bmax,
                     lpt, ihead, blo, bhi, stack)  # fmt: skip
        return True
    _leaf_give(lpt, lhead, t, leaf)
    if depth == 0:
        root[t] = -1
        return True
    par = path[depth - 1]
    sib = right[t, par] if left[t, par] == node else left[t, par]
    _node_give(left, ihead, t, par, K)
    if depth == 1:
        root[t] = sib
        return True
    g = path[depth - 2]
    if left[t, g] == par:
        left[t, g] = sib
    else:
        right[t, g] = sib
    depth -= 1  # path[:depth] are the remaining ancestors
    if track:
        for i in range(depth):
            nmass[t, path[i]] -= 1
    # cached boxes shrink along the remaining path, bottom-up: each is its children's union
    top = depth  # the highest cached node on the path
    for i in range(depth - 1, -1, -1):
        if path[i] < K:
            top = i
    if top < depth:
        node_box(t, sib, blo, bhi, pts, left, right, bmin, bmax, lpt, stack)
        child = sib
        for i in range(depth - 1, -1, -1):
            a = path[i]
            other = right[t, a] if left[t, a] == child else left[t, a]
            merge_box(t, other, blo, bhi, pts, left, right, bmin, bmax, lpt, stack)
            if a < K:
                for d in range(D):
                    bmin[t, a, d] = blo[d]
                    bmax[t, a, d] = bhi[d]
            if i == top:
                break
            child = a
    if track:
        _recache(t, depth, path, meta, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt,
                 ihead, blo, bhi, stack)  # fmt: skip
    return True


# -- scoring ------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def seen_score(lm, tree_mass, depth):
    """AWS's score (before normalisation) of a point equal to a leaf's point: ``lm`` copies there,
    at ``depth``, in a tree of ``tree_mass`` points (shared by the streaming and frozen kernels)."""
    return (1.0 - lm / (2.0 * tree_mass)) / (depth + math.log2(lm + 1.0))


@njit(cache=True, inline="always")
def _path_box(t, a, child, pts, left, right, bmin, bmax, lpt, stack, blo, bhi):
    """Make ``blo``/``bhi`` (the box of ``child``, the path below) the box of path node ``a``."""
    if a < bmin.shape[1]:
        for d in range(pts.shape[1]):
            blo[d] = bmin[t, a, d]
            bhi[d] = bmax[t, a, d]
    else:
        sib = right[t, a] if left[t, a] == child else left[t, a]
        merge_box(t, sib, blo, bhi, pts, left, right, bmin, bmax, lpt, stack)


@_no_refcount
def tree_score(t, q, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass, path, stack,
               blo, bhi):  # fmt: skip
    """AWS's anomaly score of ``q`` in tree ``t`` (normalised by log2(1 + treeMass))."""
    M = left.shape[1]
    D = pts.shape[1]
    node = root[t]
    if node < 0:
        return 0.0
    tree_mass = sn[t]
    node, depth = _descend(t, q, node, left, right, cdim, cval, path)
    leaf = node - M
    lp = pts[lpt[t, leaf]]
    equal = True
    for d in range(D):
        if lp[d] != q[d]:
            equal = False
            break
    lm = float(leaf_mass(lmass, t, leaf))
    if equal:
        score = seen_score(lm, tree_mass, depth)
        return score * math.log2(tree_mass + 1.0)
    score = 1.0 / (depth + 1.0)
    for d in range(D):
        blo[d] = lp[d]
        bhi[d] = lp[d]
    child = node
    for i in range(depth - 1, -1, -1):
        a = path[i]
        _path_box(t, a, child, pts, left, right, bmin, bmax, lpt, stack, blo, bhi)
        child = a
        new_range = 0.0
        diff = 0.0
        for d in range(D):  # branch-free; float32 differences (only one side can be outside)
            x = q[d]
            diff += max(x - bhi[d], 0.0) + max(blo[d] - x, 0.0)
            new_range += max(bhi[d], x) - min(blo[d], x)
        if diff <= 0.0:
            break
        prob = diff / new_range
        score = prob / (i + 1.0) + (1.0 - prob) * score
    return score * math.log2(tree_mass + 1.0)


@njit(cache=True)
def forest_score(q, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass, path, stack,
                 blo, bhi):  # fmt: skip
    """The forest's score of ``q``: the trees' scores averaged. A function of its own, called once
    per record: with the tree loop compiled inside the streaming step, scoring ran 2x slower."""
    total = 0.0
    for t in range(root.shape[0]):
        total += tree_score(t, q, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass,
                            path, stack, blo, bhi)  # fmt: skip
    return total / root.shape[0]


@_no_refcount
def tree_attribution(t, q, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass, path,
                     stack, blo, bhi, hi_out, lo_out, shadow_lo, shadow_hi, hi_v, lo_v):  # fmt: skip
    """AWS's DiVector attribution of ``q`` in tree ``t``, added into ``hi_out``/``lo_out``.

    The sum over dimensions of high + low equals :func:`tree_score`.
    """
    M = left.shape[1]
    D = pts.shape[1]
    node = root[t]
    if node < 0:
        return
    tree_mass = sn[t]
    node, depth = _descend(t, q, node, left, right, cdim, cval, path)
    leaf = node - M
    lp = pts[lpt[t, leaf]]
    norm = math.log2(tree_mass + 1.0)
    equal = True
    for d in range(D):
        if lp[d] != q[d]:
            equal = False
            break
    lm = float(leaf_mass(lmass, t, leaf))
    if equal:
        # a duplicate: the point counts as seen; spread the mass by the counterfactual boxes of
        # the siblings ("what if the point had not been inserted"), then rescale to the score
        saved = seen_score(lm, tree_mass, depth)
        for d in range(D):
            hi_v[d] = saved / (2.0 * D)
            lo_v[d] = saved / (2.0 * D)
            shadow_lo[d] = np.inf
            shadow_hi[d] = -np.inf
        child = node
        for i in range(depth - 1, -1, -1):
            a = path[i]
            sib = right[t, a] if left[t, a] == child else left[t, a]
            merge_box(t, sib, shadow_lo, shadow_hi, pts, left, right, bmin, bmax, lpt, stack)
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
        blo[d] = lp[d]
        bhi[d] = lp[d]
    child = node
    for i in range(depth - 1, -1, -1):
        a = path[i]
        _path_box(t, a, child, pts, left, right, bmin, bmax, lpt, stack, blo, bhi)
        child = a
        new_range = 0.0
        diff = 0.0
        for d in range(D):
            x = float(q[d])
            lo = float(blo[d])
            hi = float(bhi[d])
            new_range += max(hi, x) - min(lo, x)
            diff += max(x - hi, 0.0) + max(lo - x, 0.0)
        if diff <= 0.0:
            break
        prob = diff / new_range
        unseen = 1.0 / (i + 1.0)
        for d in range(D):
            x = float(q[d])
            hi_v[d] = max(x - float(bhi[d]), 0.0) / new_range * unseen + (1.0 - prob) * hi_v[d]
            lo_v[d] = max(float(blo[d]) - x, 0.0) / new_range * unseen + (1.0 - prob) * lo_v[d]
    for d in range(D):
        hi_out[d] += hi_v[d] * norm
        lo_out[d] += lo_v[d] * norm


@njit(cache=True, inline="always")
def _scratch(S, D):
    """Per-call work arrays: a path, a traversal stack, a box, the boxes along a path."""
    return (
        np.empty(S + 2, dtype=np.int64),
        np.empty(2 * S + 4, dtype=np.int64),
        np.empty(D, dtype=np.float32),
        np.empty(D, dtype=np.float32),
        np.empty((S + 2, 2, D), dtype=np.float32),
    )


# -- the streaming step ---------------------------------------------------------------------------
@njit(cache=True)
def forest_step(X, mode, scores, attr_hi, attr_lo, vals, pts, meta, root, left, right, cdim, cval,
                nmass, bmin, bmax, lpt, lmass, ihead, lhead, sw, spt, sn, rng, lam,
                initial_fraction):  # fmt: skip
    """Score (mode 2; 3 adds attribution) then update (modes 1-3) each row of ``X`` in turn.

    Returns the number of rows processed: fewer than ``len(X)`` when the point store filled and was
    compacted, so the caller can resize it (:meth:`ForestArrays.resize_store`) before calling
    again with the remaining rows.
    """
    F = root.shape[0]
    S = sw.shape[1]
    D = X.shape[1]
    path, stack, blo, bhi, pbox = _scratch(S, D)
    shadow_lo = np.empty(D, dtype=np.float32)
    shadow_hi = np.empty(D, dtype=np.float32)
    hi_v = np.empty(D)
    lo_v = np.empty(D)
    for r in range(X.shape[0]):
        m = mode[r]
        if m == 0:
            continue
        if not _store_room(vals, meta):
            store_compact(vals, meta, lpt, spt, sn)
            return r
        q = X[r]
        if m >= 2:
            total = 0.0
            if m == 3:
                for d in range(D):
                    attr_hi[r, d] = 0.0
                    attr_lo[r, d] = 0.0
                for t in range(F):
                    tree_attribution(t, q, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt,
                                     lmass, path, stack, blo, bhi, attr_hi[r], attr_lo[r],
                                     shadow_lo, shadow_hi, hi_v, lo_v)  # fmt: skip
                for d in range(D):
                    attr_hi[r, d] /= F
                    attr_lo[r, d] /= F
                    total += attr_hi[r, d] + attr_lo[r, d]
                scores[r] = total
            else:
                scores[r] = forest_score(q, pts, root, left, right, cdim, cval, sn, bmin, bmax,
                                         lpt, lmass, path, stack, blo, bhi)  # fmt: skip
        # update: the new point enters the store once, every accepting tree references it
        if meta[META_SEQ] - meta[META_WBASE] >= _REBASE_AFTER:
            rebase(sw, sn, meta, lam)
        p = _store_put(pts, meta, q)
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
                gone = heap_pop(sw, spt, sn, t)
                tree_delete(t, gone, meta, pts, root, left, right, cdim, cval, nmass, bmin, bmax,
                            lpt, lmass, ihead, lhead, path, stack, blo, bhi)  # fmt: skip
            leaf = tree_insert(t, p, q, meta, pts, root, left, right, cdim, cval, nmass, bmin,
                               bmax, lpt, lmass, ihead, lhead, rng, path, stack, blo, bhi,
                               pbox)  # fmt: skip
            heap_push(sw, spt, sn, t, w, leaf)
        meta[META_SEQ] += 1
    return X.shape[0]


@njit(cache=True)
def insert_points(t, idx, meta, pts, root, left, right, cdim, cval, nmass, bmin, bmax, lpt,
                  lmass, ihead, lhead, rng, spt):  # fmt: skip
    """Build tree ``t`` from store points ``idx`` (the batch forest's fit)."""
    path, stack, blo, bhi, pbox = _scratch(lpt.shape[1], pts.shape[1])
    for i in range(idx.shape[0]):
        q = pts[idx[i]]
        leaf = tree_insert(t, idx[i], q, meta, pts, root, left, right, cdim, cval, nmass, bmin,
                           bmax, lpt, lmass, ihead, lhead, rng, path, stack, blo, bhi,
                           pbox)  # fmt: skip
        spt[t, i] = leaf


@njit(cache=True)
def score_rows(X, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass):
    """Scores of the rows of ``X`` against a fixed forest, on one thread (for a few rows)."""
    path, stack, blo, bhi, _ = _scratch(lpt.shape[1], pts.shape[1])
    out = np.zeros(X.shape[0])
    for r in range(X.shape[0]):
        out[r] = forest_score(X[r], pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass,
                              path, stack, blo, bhi)  # fmt: skip
    return out


@njit(cache=True, inline="always")
def _attribute_row(r, X, hi, lo, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass):
    """Attribution of row ``r`` of ``X`` into ``hi[r]``/``lo[r]``, averaged over the trees."""
    D = X.shape[1]
    F = root.shape[0]
    path, stack, blo, bhi, _ = _scratch(lpt.shape[1], D)
    shadow_lo = np.empty(D, dtype=np.float32)
    shadow_hi = np.empty(D, dtype=np.float32)
    hi_v = np.empty(D)
    lo_v = np.empty(D)
    for t in range(F):
        tree_attribution(t, X[r], pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass,
                         path, stack, blo, bhi, hi[r], lo[r], shadow_lo, shadow_hi, hi_v,
                         lo_v)  # fmt: skip
    for d in range(D):
        hi[r, d] /= F
        lo[r, d] /= F


@njit(cache=True)
def attribute_rows(X, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass):
    """Attributions (high, low) of the rows of ``X`` on one thread (for a few rows: a parallel
    launch costs more than one record's attribution)."""
    hi = np.zeros(X.shape)
    lo = np.zeros(X.shape)
    for r in range(X.shape[0]):
        _attribute_row(r, X, hi, lo, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass)
    return hi, lo


@njit(cache=True, parallel=True)
def attribute_many(X, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass):
    """Attributions (high, low) of all rows of ``X`` against a fixed forest, rows in parallel."""
    hi = np.zeros(X.shape)
    lo = np.zeros(X.shape)
    for r in prange(X.shape[0]):
        _attribute_row(r, X, hi, lo, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass)
    return hi, lo


# -- many forests at once -----------------------------------------------------------------------
@njit(cache=True, parallel=True, nogil=True)
def attribute_forests(Q, slots, pts, root, left, right, cdim, cval, sn, bmin, bmax, lpt, lmass,
                      scores, hi, lo):  # fmt: skip
    """Score and attribute row ``i`` of ``Q`` against forest ``slots[i]`` (the other arguments
    are typed lists of every forest's arrays, as :meth:`ForestArrays.tree` orders them), forests
    in parallel and without learning. Each row gets exactly what :func:`forest_step`'s mode 3
    gives it (the same trees in the same order, the same sums), so the result does not depend on
    the number of threads. Rows must name distinct forests (they are only read here)."""
    D = Q.shape[1]
    for i in prange(Q.shape[0]):
        f = slots[i]
        tpts, troot, tleft, tright, tcdim = pts[f], root[f], left[f], right[f], cdim[f]
        tcval, tsn, tbmin, tbmax, tlpt, tlmass = cval[f], sn[f], bmin[f], bmax[f], lpt[f], lmass[f]
        F = troot.shape[0]
        path, stack, blo, bhi, _ = _scratch(tlpt.shape[1], D)
        shadow_lo = np.empty(D, dtype=np.float32)
        shadow_hi = np.empty(D, dtype=np.float32)
        hi_v = np.empty(D)
        lo_v = np.empty(D)
        for d in range(D):
            hi[i, d] = 0.0
            lo[i, d] = 0.0
        for t in range(F):
            tree_attribution(t, Q[i], tpts, troot, tleft, tright, tcdim, tcval, tsn, tbmin, tbmax,
                             tlpt, tlmass, path, stack, blo, bhi, hi[i], lo[i], shadow_lo,
                             shadow_hi, hi_v, lo_v)  # fmt: skip
        total = 0.0
        for d in range(D):
            hi[i, d] /= F
            lo[i, d] /= F
            total += hi[i, d] + lo[i, d]
        scores[i] = total
