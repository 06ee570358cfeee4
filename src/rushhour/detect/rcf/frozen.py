"""A fixed forest laid out for fast batch scoring (SageMaker semantics: the forest never updates).

A batch forest is scored many times and never changes, so :func:`freeze` turns its trees into one
compact, read-only layout:

* every tree's internal nodes in breadth-first order, all trees in contiguous arrays, so the top of
  each tree shares a few cache lines;
* per internal node its cut (dimension, value), its two children (``>= 0``: an internal node,
  ``< 0``: leaf ``~c``) and its bounding box as float32 ``(lo, hi)`` rows, precomputed once from the
  leaves (the streaming forest caches only some boxes);
* leaf points copied beside their masses, so a leaf needs no lookup in the shared point store.

:func:`score_frozen` then scores blocks of points tree by tree (one tree's nodes stay in cache while
the block walks it), blocks in parallel. The arithmetic is the streaming kernels' (AWS's
expected-inverse-depth score, trees summed in order), so scores equal
:func:`rushhour.detect.rcf.kernels.score_rows` on the same forest up to the last bits (fast-math
may reorder the per-dimension sums; tests/test_rcf_frozen.py checks relative 1e-12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from rushhour.detect.rcf.forest import ForestArrays
from rushhour.detect.rcf.kernels import seen_score
from rushhour.detect.rcf.layout import EMPTY

BLOCK = 2048  # points scored together against one tree (their coordinates stay in L2)
# fast-math that may reorder and fuse sums but keeps divisions exact (no approximate reciprocals)
_REORDER = {"reassoc", "nsz", "nnan", "ninf", "contract"}


@dataclass(frozen=True)
class FrozenForest:
    """The read-only layout of a fixed forest (see the module docstring)."""

    root: np.ndarray  # (F,) int32: root reference (>= 0 internal, < 0 leaf ~c), EMPTY when empty
    norm: np.ndarray  # (F,) float64: log2(1 + tree mass)
    mass: np.ndarray  # (F,) float64: tree mass
    cdim: np.ndarray  # (N,) int32
    cval: np.ndarray  # (N,) float32
    child: np.ndarray  # (N, 2) int32
    box: np.ndarray  # (N, 2, D) float32: lo, hi
    leaf: np.ndarray  # (L, D) float32: leaf points
    lmass: np.ndarray  # (L,) float64
    max_depth: int

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self.root, self.norm, self.mass, self.cdim, self.cval, self.child, self.box, self.leaf,
            self.lmass,
        )  # fmt: skip

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays())

    def score(self, X: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``X`` (shingled points, float32), in parallel over blocks."""
        Q = np.ascontiguousarray(X, dtype=np.float32)
        args = (*self.arrays(), self.max_depth)
        return np.asarray(score_frozen(Q, *args))


@njit(cache=True, inline="always")
def _bfs(r, left_t, right_t, M, order, depth):
    """Breadth-first order of the tree rooted at ``r`` into ``order``/``depth``; returns its size."""
    order[0] = r
    depth[0] = 0
    head = 0
    tail = 1
    while head < tail:
        c = order[head]
        if c < M:
            for child in (left_t[c], right_t[c]):
                order[tail] = child
                depth[tail] = depth[head] + 1
                tail += 1
        head += 1
    return tail


@njit(cache=True, inline="always")
def _put_leaf(pts, lpt_t, lmass_t, slot, leaf, lmass, at):
    for d in range(pts.shape[1]):
        leaf[at, d] = pts[lpt_t[slot], d]
    lmass[at] = lmass_t[slot]


@njit(cache=True, inline="always")
def _boxes(child, box, leaf, first, end):
    """Boxes of nodes ``first .. end-1``, bottom-up (children follow parents in breadth-first)."""
    for g in range(end - 1, first - 1, -1):
        for d in range(box.shape[2]):
            lo = np.float32(np.inf)
            hi = np.float32(-np.inf)
            for c in (child[g, 0], child[g, 1]):
                lo = min(lo, box[c, 0, d] if c >= 0 else leaf[~c, d])
                hi = max(hi, box[c, 1, d] if c >= 0 else leaf[~c, d])
            box[g, 0, d] = lo
            box[g, 1, d] = hi


@njit(cache=True)
def _layout(pts, root, left, right, cdim, cval, lpt, lmass):
    F, M = left.shape
    order = np.empty(M + lpt.shape[1] + 1, dtype=np.int64)
    depth = np.empty(M + lpt.shape[1] + 1, dtype=np.int64)
    n_int = 0
    for t in range(F):
        if root[t] >= 0:
            n = _bfs(root[t], left[t], right[t], M, order, depth)
            n_int += n // 2  # a tree of k internal nodes has k + 1 leaves
    out_root = np.full(F, EMPTY, dtype=np.int32)
    out_cdim = np.zeros(n_int, dtype=np.int32)
    out_cval = np.zeros(n_int, dtype=np.float32)
    out_child = np.zeros((n_int, 2), dtype=np.int32)
    box = np.zeros((n_int, 2, pts.shape[1]), dtype=np.float32)
    leaf = np.zeros((n_int + F, pts.shape[1]), dtype=np.float32)
    out_lmass = np.zeros(n_int + F)
    mass = np.zeros(F)
    newid = np.empty(M, dtype=np.int64)
    base = 0
    lbase = 0
    max_depth = 0
    for t in range(F):
        if root[t] < 0:
            continue
        n = _bfs(root[t], left[t], right[t], M, order, depth)
        max_depth = max(max_depth, depth[n - 1])
        if root[t] >= M:  # a single leaf
            _put_leaf(pts, lpt[t], lmass[t], root[t] - M, leaf, out_lmass, lbase)
            mass[t] = out_lmass[lbase]
            out_root[t] = ~lbase
            lbase += 1
            continue
        k = base
        for i in range(n):  # internal nodes numbered in breadth-first order, from base on
            if order[i] < M:
                newid[order[i]] = k
                k += 1
        out_root[t] = newid[root[t]]
        for i in range(n):
            c = order[i]
            if c >= M:
                continue
            g = newid[c]
            out_cdim[g] = cdim[t, c]
            out_cval[g] = cval[t, c]
            for side in range(2):
                ch = left[t, c] if side == 0 else right[t, c]
                if ch < M:
                    out_child[g, side] = newid[ch]
                else:  # leaves numbered in the order their parents are met
                    _put_leaf(pts, lpt[t], lmass[t], ch - M, leaf, out_lmass, lbase)
                    mass[t] += out_lmass[lbase]
                    out_child[g, side] = ~lbase
                    lbase += 1
        _boxes(out_child, box, leaf, base, k)
        base = k
    norm = np.empty(F)
    for t in range(F):
        norm[t] = math.log2(mass[t] + 1.0)
    return (
        out_root, norm, mass, out_cdim, out_cval, out_child, box, leaf[:lbase],
        out_lmass[:lbase], max_depth,
    )  # fmt: skip


def freeze(arrays: ForestArrays) -> FrozenForest:
    """The read-only layout of a forest's trees (the forest itself is not changed)."""
    a = arrays
    root, norm, mass, cdim, cval, child, box, leaf, lmass, depth = _layout(
        a.pts, a.root, a.left, a.right, a.cdim, a.cval, a.lpt, a.lmass
    )
    return FrozenForest(root, norm, mass, cdim, cval, child, box, leaf, lmass, int(depth))


# columns of the walk's stack: one row per node still to visit (down) or to climb through (up)
_NODE, _S, _E, _MID, _LIVE_L, _LIVE_R, _DEPTH, _PARENT, _SIDE, _UP = range(10)


@njit(cache=True, inline="always")
def _push(st, sp, node, s, e, depth, parent, side):
    st[sp, _NODE] = node
    st[sp, _S] = s
    st[sp, _E] = e
    st[sp, _DEPTH] = depth
    st[sp, _PARENT] = parent
    st[sp, _SIDE] = side
    st[sp, _UP] = 0
    return sp + 1


@njit(cache=True, inline="always")
def _start_at_leaf(X, b0, idx, s, e, score, lp, leaf, lm, tm, depth):
    """Scores of the points ``idx[s:e]`` that reached leaf ``lp``; the ones that must still climb
    (not equal to the leaf point) move to the front. Returns how many climb."""
    seen = seen_score(lm, tm, depth)
    unseen = 1.0 / (depth + 1.0)
    live = 0
    for j in range(s, e):
        p = idx[j]
        equal = True
        for d in range(X.shape[1]):
            if leaf[lp, d] != X[b0 + p, d]:
                equal = False
                break
        score[p] = seen if equal else unseen
        idx[s + live] = p
        live += not equal
    return live


@njit(cache=True, inline="always")
def _climb(X, b0, idx, lo_j, hi_j, out_j, score, box, node, w):
    """Mix node ``node``'s separation probability into the climbing points ``idx[lo_j:hi_j]``;
    the ones still outside its box are written from ``idx[out_j]`` on. Returns how many."""
    zero = np.float32(0.0)
    live = 0
    for j in range(lo_j, hi_j):
        p = idx[j]
        diff = 0.0
        new_range = 0.0
        for d in range(X.shape[1]):  # float32 differences, as the streaming kernels
            x = X[b0 + p, d]
            lo = box[node, 0, d]
            hi = box[node, 1, d]
            diff += max(x - hi, zero) + max(lo - x, zero)
            new_range += max(hi, x) - min(lo, x)
        if diff > 0.0:
            prob = diff / new_range
            score[p] = prob * w + (1.0 - prob) * score[p]
        idx[out_j + live] = p
        live += diff > 0.0
    return live


@njit(cache=True, inline="always")
def _split(X, b0, idx, tmp, s, e, d, v):
    """Partition ``idx[s:e]`` by the cut (left: ``x[d] <= v`` first); returns where right starts."""
    nl = s
    nr = 0
    for j in range(s, e):  # branch-free: write both ways, advance one
        p = idx[j]
        go = int(X[b0 + p, d] > v)
        tmp[nr] = p
        idx[nl] = p
        nr += go
        nl += 1 - go
    for j in range(nr):
        idx[nl + j] = tmp[j]
    return nl


@njit(cache=True, inline="always")
def _tree_block(X, b0, n, r, tm, cdim, cval, child, box, leaf, lmass, idx, tmp, score, st):
    """Scores (before normalisation) of points ``b0 .. b0+n-1`` in the tree rooted at ``r``."""
    for j in range(n):
        idx[j] = j
    sp = _push(st, 0, r, 0, n, 0, -1, 0)
    while sp > 0:
        sp -= 1
        node = st[sp, _NODE]
        s = st[sp, _S]
        e = st[sp, _E]
        depth = st[sp, _DEPTH]
        if node < 0:  # a leaf: the points that reached it start their scores here
            live = _start_at_leaf(X, b0, idx, s, e, score, ~node, leaf, lmass[~node], tm, depth)
        elif st[sp, _UP]:  # the way back up, through the live points of both children
            w = 1.0 / (depth + 1.0)
            mid = st[sp, _MID]
            live = _climb(X, b0, idx, s, s + st[sp, _LIVE_L], s, score, box, node, w)
            live += _climb(X, b0, idx, mid, mid + st[sp, _LIVE_R], s + live, score, box, node, w)
        else:  # the way down: split the node's points by its cut, then visit both sides
            mid = _split(X, b0, idx, tmp, s, e, cdim[node], cval[node])
            st[sp, _UP] = 1
            st[sp, _MID] = mid
            st[sp, _LIVE_L] = 0
            st[sp, _LIVE_R] = 0
            me = sp
            sp += 1
            if mid < e:
                sp = _push(st, sp, child[node, 1], mid, e, depth + 1, me, 1)
            if mid > s:
                sp = _push(st, sp, child[node, 0], s, mid, depth + 1, me, 0)
            continue
        parent = st[sp, _PARENT]
        if parent >= 0:
            st[parent, _LIVE_R if st[sp, _SIDE] else _LIVE_L] = live


@njit(cache=True, parallel=True, fastmath=_REORDER)
def score_frozen(X, root, norm, mass, cdim, cval, child, box, leaf, lmass, max_depth):
    """Scores of the rows of ``X`` (float32) against the frozen forest.

    Per block of points and per tree, the block is split down the tree by the cuts (a partition of
    point indices, node by node, so each node is read once per block), then climbs back: at each
    node, the points still outside its box mix in the probability that a random cut separates them
    (``diff / new_range``), and stop at the first box that holds them, as AWS's visitor does.
    Fast-math (without approximate division) lets the compiler reorder the per-dimension sums:
    scores differ from the streaming kernels' in the last bits only.
    """
    N = X.shape[0]
    F = root.shape[0]
    out = np.zeros(N)
    nblocks = (N + BLOCK - 1) // BLOCK
    for b in prange(nblocks):
        b0 = b * BLOCK
        n = min(N, b0 + BLOCK) - b0
        idx = np.empty(n, dtype=np.int32)
        tmp = np.empty(n, dtype=np.int32)
        score = np.zeros(n)
        st = np.empty((2 * max_depth + 4, 10), dtype=np.int64)
        for t in range(F):
            if root[t] == EMPTY:
                continue
            _tree_block(X, b0, n, root[t], mass[t], cdim, cval, child, box, leaf, lmass, idx, tmp,
                        score, st)  # fmt: skip
            for j in range(n):
                out[b0 + j] += score[j] * norm[t]
        for j in range(n):
            out[b0 + j] /= F
    return out
