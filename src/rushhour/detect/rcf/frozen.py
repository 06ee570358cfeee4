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
:func:`rushhour.detect.rcf.kernels.score_rows` on the same forest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from rushhour.detect.rcf.forest import ForestArrays
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


@njit(cache=True)
def _layout(pts, root, left, right, cdim, cval, lpt, lmass):
    F, M = left.shape
    D = pts.shape[1]
    n_int = 0  # internal nodes in all trees, counted by walking them
    order = np.empty(M + lpt.shape[1] + 1, dtype=np.int64)
    counts = np.zeros(F, dtype=np.int64)
    for t in range(F):
        if root[t] < 0:
            continue
        head = 0
        tail = 0
        order[tail] = root[t]
        tail += 1
        while head < tail:
            c = order[head]
            head += 1
            if c < M:
                counts[t] += 1
                order[tail] = left[t, c]
                tail += 1
                order[tail] = right[t, c]
                tail += 1
        n_int += counts[t]
    n_leaf = n_int + F  # a tree of k internal nodes has k + 1 leaves (or none)
    out_root = np.full(F, EMPTY, dtype=np.int32)
    out_cdim = np.zeros(n_int, dtype=np.int32)
    out_cval = np.zeros(n_int, dtype=np.float32)
    out_child = np.zeros((n_int, 2), dtype=np.int32)
    box = np.zeros((n_int, 2, D), dtype=np.float32)
    leaf = np.zeros((n_leaf, D), dtype=np.float32)
    out_lmass = np.zeros(n_leaf)
    mass = np.zeros(F)
    newid = np.empty(M, dtype=np.int64)
    base = 0
    lbase = 0
    max_depth = 0
    depth = np.empty(M + lpt.shape[1] + 1, dtype=np.int64)
    for t in range(F):
        if root[t] < 0:
            continue
        # breadth-first numbering of internal nodes; leaves numbered in the order they are met
        head = 0
        tail = 0
        order[tail] = root[t]
        depth[tail] = 0
        tail += 1
        k = base
        while head < tail:
            c = order[head]
            dep = depth[head]
            head += 1
            if c < M:
                newid[c] = k
                k += 1
                order[tail] = left[t, c]
                depth[tail] = dep + 1
                tail += 1
                order[tail] = right[t, c]
                depth[tail] = dep + 1
                tail += 1
                if dep + 1 > max_depth:
                    max_depth = dep + 1
        if root[t] >= M:
            p = lpt[t, root[t] - M]
            for d in range(D):
                leaf[lbase, d] = pts[p, d]
            out_lmass[lbase] = lmass[t, root[t] - M]
            mass[t] = lmass[t, root[t] - M]
            out_root[t] = ~lbase
            lbase += 1
            continue
        out_root[t] = newid[root[t]]
        for i in range(head):
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
                else:
                    p = lpt[t, ch - M]
                    for d in range(D):
                        leaf[lbase, d] = pts[p, d]
                    out_lmass[lbase] = lmass[t, ch - M]
                    mass[t] += lmass[t, ch - M]
                    out_child[g, side] = ~lbase
                    lbase += 1
        # boxes bottom-up: children come after their parent in breadth-first order
        for g in range(k - 1, base - 1, -1):
            for d in range(D):
                lo = np.float32(np.inf)
                hi = np.float32(-np.inf)
                for side in range(2):
                    ch = out_child[g, side]
                    if ch >= 0:
                        clo = box[ch, 0, d]
                        chi = box[ch, 1, d]
                    else:
                        clo = leaf[~ch, d]
                        chi = clo
                    lo = min(lo, clo)
                    hi = max(hi, chi)
                box[g, 0, d] = lo
                box[g, 1, d] = hi
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
    D = X.shape[1]
    out = np.zeros(N)
    zero = np.float32(0.0)
    nblocks = (N + BLOCK - 1) // BLOCK
    cap = 3 * (max_depth + 2)
    for b in prange(nblocks):
        b0 = b * BLOCK
        n = min(N, b0 + BLOCK) - b0
        idx = np.empty(n, dtype=np.int32)
        tmp = np.empty(n, dtype=np.int32)
        score = np.zeros(n)
        st_node = np.empty(cap, dtype=np.int32)
        st_s = np.empty(cap, dtype=np.int32)  # the node's points are idx[s:e]
        st_e = np.empty(cap, dtype=np.int32)
        st_mid = np.empty(cap, dtype=np.int32)  # left child's points idx[s:mid], right's idx[mid:e]
        st_al = np.zeros(cap, dtype=np.int32)  # live points at the front of each child's part
        st_ar = np.zeros(cap, dtype=np.int32)
        st_dep = np.empty(cap, dtype=np.int32)
        st_par = np.empty(cap, dtype=np.int32)  # the parent's stack slot, and which child this is
        st_side = np.empty(cap, dtype=np.int32)
        st_up = np.empty(cap, dtype=np.bool_)
        for t in range(F):
            r = root[t]
            if r == EMPTY:
                continue
            tm = mass[t]
            for j in range(n):
                idx[j] = j
            st_node[0] = r
            st_s[0] = 0
            st_e[0] = n
            st_dep[0] = 0
            st_par[0] = -1
            st_side[0] = 0
            st_up[0] = False
            sp = 1
            while sp > 0:
                sp -= 1
                node = st_node[sp]
                s = st_s[sp]
                e = st_e[sp]
                dep = st_dep[sp]
                live = 0  # points still climbing, moved to the front of idx[s:e]
                if node < 0:  # a leaf: the points that reached it start their scores here
                    lp = ~node
                    lm = lmass[lp]
                    seen = (1.0 - lm / (2.0 * tm)) / (dep + math.log2(lm + 1.0))
                    unseen = 1.0 / (dep + 1.0)
                    for j in range(s, e):
                        p = idx[j]
                        equal = True
                        for d in range(D):
                            if leaf[lp, d] != X[b0 + p, d]:
                                equal = False
                                break
                        score[p] = seen if equal else unseen
                        idx[s + live] = p
                        live += not equal
                elif st_up[sp]:  # the way back up: mix in this node's separation probability
                    w = 1.0 / (dep + 1.0)
                    mid = st_mid[sp]
                    stop_l = s + st_al[sp]
                    stop_r = mid + st_ar[sp]
                    for part in range(2):
                        lo_j, hi_j = (s, stop_l) if part == 0 else (mid, stop_r)
                        for j in range(lo_j, hi_j):
                            p = idx[j]
                            diff = 0.0
                            new_range = 0.0
                            for d in range(D):  # float32 differences, as the streaming kernels
                                x = X[b0 + p, d]
                                lo = box[node, 0, d]
                                hi = box[node, 1, d]
                                diff += max(x - hi, zero) + max(lo - x, zero)
                                new_range += max(hi, x) - min(lo, x)
                            if diff > 0.0:
                                prob = diff / new_range
                                score[p] = prob * w + (1.0 - prob) * score[p]
                            idx[s + live] = p
                            live += diff > 0.0
                else:  # the way down: split the node's points by its cut, left part first
                    cd = cdim[node]
                    cv = cval[node]
                    nl = s
                    nr = 0
                    for j in range(s, e):  # branch-free: write both ways, advance one
                        p = idx[j]
                        go = int(X[b0 + p, cd] > cv)
                        tmp[nr] = p
                        idx[nl] = p
                        nr += go
                        nl += 1 - go
                    for j in range(nr):
                        idx[nl + j] = tmp[j]
                    st_up[sp] = True
                    st_mid[sp] = nl
                    st_al[sp] = 0
                    st_ar[sp] = 0
                    me = sp
                    sp += 1
                    if nl < e:
                        st_node[sp] = child[node, 1]
                        st_s[sp] = nl
                        st_e[sp] = e
                        st_dep[sp] = dep + 1
                        st_par[sp] = me
                        st_side[sp] = 1
                        st_up[sp] = False
                        sp += 1
                    if nl > s:
                        st_node[sp] = child[node, 0]
                        st_s[sp] = s
                        st_e[sp] = nl
                        st_dep[sp] = dep + 1
                        st_par[sp] = me
                        st_side[sp] = 0
                        st_up[sp] = False
                        sp += 1
                    continue
                par = st_par[sp]
                if par >= 0:
                    if st_side[sp] == 0:
                        st_al[par] = live
                    else:
                        st_ar[par] = live
            nm = norm[t]
            for j in range(n):
                out[b0 + j] += score[j] * nm
        for j in range(n):
            out[b0 + j] /= F
    return out
