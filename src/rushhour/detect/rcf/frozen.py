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
the block walks it), the threads sharing (block, group of trees) items. The score is AWS's expected
inverse depth, as the streaming kernels compute it, but a tree's climb runs in float32 (distances
outside a box, the separation probability and the tree's score; trees are summed in float64):
scores equal :func:`rushhour.detect.rcf.kernels.score_rows` on the same forest to relative 1e-6
(tests/test_rcf_frozen.py), and agree with AWS's forest fitted on the same points (same test file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from rushhour.detect.rcf.forest import ForestArrays
from rushhour.detect.rcf.kernels import cut_dim, leaf_mass, seen_score
from rushhour.detect.rcf.layout import EMPTY

BLOCK = 1 << 17  # at most this many coordinates scored together (a block's 512 kB stay in L2)
ITEMS = 16  # work items (block, group of trees) at least, for the threads to share
# fast-math: reorder and fuse sums, divide through reciprocals (finite values only, no NaN)
_FAST = {"reassoc", "nsz", "nnan", "ninf", "contract", "arcp"}


@dataclass(frozen=True)
class FrozenForest:
    """The read-only layout of a fixed forest (see the module docstring)."""

    root: np.ndarray  # (F,) int32: root reference (>= 0 internal, < 0 leaf ~c), EMPTY when empty
    norm: np.ndarray  # (F,) float64: log2(1 + tree mass)
    mass: np.ndarray  # (F,) float64: tree mass
    cdim: np.ndarray  # (N,) int16
    cval: np.ndarray  # (N,) float32
    child: np.ndarray  # (N, 2) int32
    box: np.ndarray  # (N, 2, D) float32: lo, hi
    rsum: np.ndarray  # (N,) float32: the box's range summed over the dimensions
    leaf: np.ndarray  # (L, D) float32: leaf points
    lmass: np.ndarray  # (L,) float32 (whole numbers)
    max_depth: int
    max_nodes: int  # internal nodes of the largest tree

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self.root, self.norm, self.mass, self.cdim, self.cval, self.child, self.box, self.rsum,
            self.leaf, self.lmass,
        )  # fmt: skip

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays())

    def score(self, X: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``X`` (shingled points, float32), in parallel over blocks and
        groups of trees, each thread taking the next work item when done with its last."""
        Q = np.ascontiguousarray(X, dtype=np.float32)
        args = (*self.arrays(), self.max_depth, self.max_nodes, get_num_threads())
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
def _put_leaf(pts, lpt, lmass_in, t, slot, leaf, lmass, at):
    for d in range(pts.shape[1]):
        leaf[at, d] = pts[lpt[t, slot], d]
    lmass[at] = leaf_mass(lmass_in, t, slot)


@njit(cache=True, inline="always")
def _boxes(child, box, rsum, leaf, first, end):
    """Boxes of nodes ``first .. end-1``, bottom-up (children follow parents in breadth-first)."""
    for g in range(end - 1, first - 1, -1):
        total = 0.0
        for d in range(box.shape[2]):
            lo = np.float32(np.inf)
            hi = np.float32(-np.inf)
            for c in (child[g, 0], child[g, 1]):
                lo = min(lo, box[c, 0, d] if c >= 0 else leaf[~c, d])
                hi = max(hi, box[c, 1, d] if c >= 0 else leaf[~c, d])
            box[g, 0, d] = lo
            box[g, 1, d] = hi
            total += float(hi - lo)  # float32 differences summed in float64 (AWS's range sum)
        rsum[g] = total


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
    out_cdim = np.zeros(n_int, dtype=np.int16)
    out_cval = np.zeros(n_int, dtype=np.float32)
    out_child = np.zeros((n_int, 2), dtype=np.int32)
    box = np.zeros((n_int, 2, pts.shape[1]), dtype=np.float32)
    rsum = np.zeros(n_int, dtype=np.float32)
    leaf = np.zeros((n_int + F, pts.shape[1]), dtype=np.float32)
    out_lmass = np.zeros(n_int + F, dtype=np.float32)
    mass = np.zeros(F)
    newid = np.empty(M, dtype=np.int64)
    base = 0
    lbase = 0
    max_depth = 0
    max_nodes = 0
    for t in range(F):
        if root[t] < 0:
            continue
        n = _bfs(root[t], left[t], right[t], M, order, depth)
        max_depth = max(max_depth, depth[n - 1])
        if root[t] >= M:  # a single leaf
            _put_leaf(pts, lpt, lmass, t, root[t] - M, leaf, out_lmass, lbase)
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
            out_cdim[g] = cut_dim(cdim, t, c, M)
            out_cval[g] = cval[t, c]
            for side in range(2):
                ch = left[t, c] if side == 0 else right[t, c]
                if ch < M:
                    out_child[g, side] = newid[ch]
                else:  # leaves numbered in the order their parents are met
                    _put_leaf(pts, lpt, lmass, t, ch - M, leaf, out_lmass, lbase)
                    mass[t] += out_lmass[lbase]
                    out_child[g, side] = ~lbase
                    lbase += 1
        _boxes(out_child, box, rsum, leaf, base, k)
        max_nodes = max(max_nodes, k - base)
        base = k
    norm = np.empty(F)
    for t in range(F):
        norm[t] = math.log2(mass[t] + 1.0)
    return (
        out_root, norm, mass, out_cdim, out_cval, out_child, box, rsum, leaf[:lbase],
        out_lmass[:lbase], max_depth, max_nodes,
    )  # fmt: skip


def _streaming_trees(a: ForestArrays) -> tuple[np.ndarray, ...]:
    """What the layout reads of a streaming forest, in one place: the points (rows indexed by
    ``lpt``), the root references, the child references (``< M`` internal, ``M + slot`` leaf), the
    cuts, and each leaf slot's point and mass."""
    return a.pts, a.root, a.left, a.right, a.cdim, a.cval, a.lpt, a.lmass


def freeze(arrays: ForestArrays) -> FrozenForest:
    """The read-only layout of a forest's trees (the forest itself is not changed)."""
    root, norm, mass, cdim, cval, child, box, rsum, leaf, lmass, depth, nodes = _layout(
        *_streaming_trees(arrays)
    )
    return FrozenForest(
        root, norm, mass, cdim, cval, child, box, rsum, leaf, lmass, int(depth), int(nodes)
    )


# Indexing note for the kernels below: Numba wraps negative indices around (a compare and a select
# per access), which keeps LLVM from vectorising a loop and doubles the cost of a scalar one. Loops
# therefore run over slices from 0 and index with unsigned integers (``_u``), never negative here.
_u = np.uint64


@njit(cache=True, inline="always")
def _descend(Xb, n, r, cdim, cval, child, idx, tmp, st, vis):
    """Partition the block's points ``0 .. n-1`` down the tree rooted at ``r``: afterwards ``idx``
    lists them leaf by leaf, every node's points contiguous. ``vis`` gets one row ``(node, s, e,
    depth)`` per node reached (internal nodes and leaves, ``~leaf`` for a leaf) in pre-order, so
    reading it backwards visits children before parents. Returns the number of rows."""
    for j in range(n):
        idx[j] = j
    st[0, 0] = r
    st[0, 1] = 0
    st[0, 2] = n
    st[0, 3] = 0
    sp = 1
    nv = 0
    while sp > 0:
        sp -= 1
        node = st[_u(sp), 0]
        s = st[_u(sp), 1]
        e = st[_u(sp), 2]
        depth = st[_u(sp), 3]
        vis[_u(nv), 0] = node
        vis[_u(nv), 1] = s
        vis[_u(nv), 2] = e
        vis[_u(nv), 3] = depth
        nv += 1
        if node < 0:
            continue
        mid = s + _split(Xb[cdim[_u(node)]], idx[s:e], tmp, cval[_u(node)])
        for c, cs, ce in ((child[_u(node), 1], mid, e), (child[_u(node), 0], s, mid)):
            if ce > cs:
                st[_u(sp), 0] = c
                st[_u(sp), 1] = cs
                st[_u(sp), 2] = ce
                st[_u(sp), 3] = depth + 1
                sp += 1
    return nv


@njit(cache=True, inline="always")
def _split(col, ids, tmp, v):
    """Partition ``ids`` by the cut (left: ``col[id] <= v`` first); returns where right starts."""
    nl = 0
    nr = 0
    for j in range(ids.shape[0]):  # branch-free: write both ways, advance one
        p = ids[j]
        go = int(col[_u(p)] > v)
        tmp[_u(nr)] = p
        ids[_u(nl)] = p
        nr += go
        nl += 1 - go
    for j in range(nr):
        ids[_u(nl + j)] = tmp[j]
    return nl


@njit(cache=True, inline="always")
def _at_leaf(xs, s, e, sc, leaf, lm, tm, depth):
    """Start scores ``sc`` of the points ``xs[:, s:e]`` (one row per dimension) that reached
    ``leaf``. (Rows are sliced one by one: a 2-d slice would lose the rows' contiguity.)"""
    seen = seen_score(lm, tm, depth)
    unseen = 1.0 / (depth + 1.0)
    for j in range(sc.shape[0]):
        sc[j] = seen
    for d in range(xs.shape[0]):
        v = leaf[d]
        row = xs[d, s:e]
        for j in range(sc.shape[0]):
            if row[j] != v:
                sc[j] = unseen


@njit(cache=True, inline="always")
def _climb(xs, s, e, acc, sc, lo, hi, rs, w):
    """Mix a node's separation probability into the scores ``sc`` of its points ``xs[:, s:e]``.

    Points inside the box ``lo, hi`` (every point that stopped climbing below: boxes nest) get
    probability 0, which leaves their score unchanged, so the whole range is processed without
    compaction and the loops over points vectorise: per dimension, the distance outside the box."""
    n = sc.shape[0]
    last = xs.shape[0] - 1
    for d in range(last):  # the distances outside the box in all dimensions but the last
        lo_d = lo[d]
        hi_d = hi[d]
        row = xs[d, s:e]
        if d == 0:
            for j in range(n):
                acc[j] = _outside(row[j], lo_d, hi_d)
        else:
            for j in range(n):
                acc[j] += _outside(row[j], lo_d, hi_d)
    lo_d = lo[last]
    hi_d = hi[last]
    row = xs[last, s:e]
    rs32 = np.float32(rs)
    w32 = np.float32(w)
    for j in range(n):  # the last dimension's, then the probability and the score
        diff = (acc[j] if last else np.float32(0.0)) + _outside(row[j], lo_d, hi_d)
        prob = diff / (rs32 + diff)
        sc[j] += prob * (w32 - sc[j])


@njit(cache=True, inline="always")
def _outside(x, lo, hi):
    """How far ``x`` lies outside ``[lo, hi]`` (one side at most is positive)."""
    return max(max(x - hi, lo - x), np.float32(0.0))


@njit(cache=True, inline="always")
def _tree_block(Xb, ob, r, tm, nrm, cdim, cval, child, box, rsum, leaf, lmass, ws):
    """Add tree ``r``'s normalised scores of the block's points ``Xb`` (one row per dimension) into
    ``ob``. Work arrays ``ws``: the points' order (``idx``, ``tmp``), their coordinates in that order
    (``xs``), distances outside a box (``acc``), scores in that order (``sc``), the walk's stack
    (``st``) and the nodes it reached (``vis``)."""
    idx, tmp, xs, acc, sc, st, vis = ws
    n = Xb.shape[1]
    nv = _descend(Xb, n, r, cdim, cval, child, idx, tmp, st, vis)
    for d in range(Xb.shape[0]):  # the block's coordinates in leaf order, one row per dimension
        row = Xb[d]
        out = xs[d]
        for j in range(n):
            out[j] = row[_u(idx[j])]
    for k in range(nv - 1, -1, -1):
        node = vis[_u(k), 0]
        s = vis[_u(k), 1]
        e = vis[_u(k), 2]
        depth = vis[_u(k), 3]
        if node < 0:
            lp = _u(~node)
            _at_leaf(xs, s, e, sc[s:e], leaf[lp], lmass[lp], tm, depth)
        else:
            g = _u(node)
            w = 1.0 / (depth + 1.0)
            _climb(xs, s, e, acc[s:e], sc[s:e], box[g, 0], box[g, 1], rsum[g], w)
    for j in range(n):
        ob[_u(idx[j])] += sc[j] * nrm


@intrinsic
def _take(typingctx, counter):
    """Atomically add 1 to ``counter[0]`` and return its value before: the next work item."""
    sig = types.int64(counter)

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [zero])
        one = context.get_constant(types.int64, 1)
        return builder.atomic_rmw("add", ptr, one, "monotonic")

    return sig, codegen


@njit(cache=True, inline="always")
def _item(X, item, groups, size, per, part, root, norm, mass, cdim, cval, child, box, rsum, leaf,
          lmass, max_depth, max_nodes):  # fmt: skip
    """Work item ``item``: block ``item // groups``, tree group ``item % groups``; its trees'
    normalised scores summed into ``part[item]``."""
    N, D = X.shape
    F = root.shape[0]
    b0 = min(N, item // groups * size)
    n = min(N, b0 + size) - b0
    ob = part[item, :n]
    for j in range(n):
        ob[j] = 0.0
    t0 = min(F, item % groups * per)
    if n == 0 or t0 == F:
        return
    Xb = np.ascontiguousarray(X[b0 : b0 + n].T)  # one row per dimension
    ws = (  # idx, tmp, xs, acc, sc, st, vis (see _tree_block)
        np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32),
        np.empty((D, n), dtype=np.float32), np.empty(n, dtype=np.float32),
        np.empty(n, dtype=np.float32), np.empty((max_depth + 2, 4), dtype=np.int64),
        np.empty((2 * max_nodes + 1, 4), dtype=np.int64),
    )  # fmt: skip
    for t in range(t0, min(F, t0 + per)):
        r = root[t]
        if r != EMPTY:
            _tree_block(Xb, ob, r, mass[t], norm[t], cdim, cval, child, box, rsum, leaf, lmass, ws)


@njit(cache=True, parallel=True, fastmath=_FAST, error_model="numpy")
def score_frozen(X, root, norm, mass, cdim, cval, child, box, rsum, leaf, lmass, max_depth,
                 max_nodes, threads):  # fmt: skip
    """Scores of the rows of ``X`` (float32) against the frozen forest.

    Per block of points and per tree, the block is split down the tree by the cuts (a partition of
    point indices, node by node, so each node is read once per block); the points' coordinates are
    then copied in leaf order, one row per dimension, and every node, children before parents, mixes
    into the scores of all its points the probability that a random cut separates each from the box
    (``diff / (range + diff)``): zero once a point is inside, as AWS's visitor stops there.

    The work items are (block, group of trees) pairs, at least ``ITEMS``; each of the ``threads``
    workers takes the next item when done with its last (an atomic counter), so a thread slowed by
    another process leaves its share to the others, while blocks stay large. The items do not
    depend on the number of threads and their partial sums are added in a fixed order: the scores
    do not depend on the machine's threads or the schedule.
    """
    N = X.shape[0]
    F = root.shape[0]
    D = X.shape[1]
    out = np.empty(N)
    if N == 0:
        return out
    cap = max(64, BLOCK // D)  # blocks as large as allowed
    nblocks = (N + cap - 1) // cap
    size = (N + nblocks - 1) // nblocks
    groups = min(F, max(1, (ITEMS + nblocks - 1) // nblocks))
    per = (F + groups - 1) // groups
    part = np.empty((nblocks * groups, size))
    taken = np.zeros(1, dtype=np.int64)
    for _ in prange(threads):
        while True:
            item: int = _take(taken)  # type: ignore[call-arg]
            if item >= nblocks * groups:
                break
            _item(X, item, groups, size, per, part, root, norm, mass, cdim, cval, child, box, rsum,
                  leaf, lmass, max_depth, max_nodes)  # fmt: skip
    for b in range(nblocks):  # the groups' sums in order
        b0 = min(N, b * size)
        n = min(N, b0 + size) - b0
        ob = out[b0 : b0 + n]
        for j in range(n):
            ob[j] = part[b * groups, j]
        for g in range(1, groups):
            pb = part[b * groups + g, :n]
            for j in range(n):
                ob[j] += pb[j]
        for j in range(n):
            ob[j] /= F
    return out
