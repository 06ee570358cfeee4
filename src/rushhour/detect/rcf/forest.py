"""The streaming random cut forest (Kinesis ``RANDOM_CUT_FOREST`` semantics).

Per record the forest first *scores* the record, then *updates* with it. Scores are 0 for the first
``sub_sample_size`` records (Kinesis's warm-up) and while the internal shingle fills; afterwards they
are the average over trees of AWS's expected-inverse-depth anomaly score, on AWS's scale
(``0 .. log2(sub_sample_size + 1)``; ordinary points score around 0.7 on traffic, anomalies 2 and more).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> forest = RandomCutForest(RCFConfig(number_of_trees=30, sub_sample_size=64, seed=1))
>>> X = rng.normal(size=(600, 2))
>>> X[550] = [9.0, 9.0]
>>> scores = forest.process(X).scores
>>> bool(scores[:64].max() == 0.0), int(scores.argmax())
(True, 550)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rushhour.detect.rcf import kernels
from rushhour.detect.rcf.layout import (
    META_END,
    META_SEQ,
    META_SHINGLE,
    META_SIZE,
    META_WBASE,
)
from rushhour.detect.rcf.shingle import Shingler
from rushhour.errors import InputError, NotFittedError, UsageError

MAX_INPUT_COLUMNS = 30
# the fraction of internal slots with a cached bounding box (the heaviest nodes get them) when the
# configuration leaves it open: up to SMALL_POINT dimensions 30% (a box costs little to rebuild
# there, and 100 trees x 256 samples x 3 dimensions fit in 1 MB); above, every node (the climb back
# up a tree goes higher in more dimensions, so rebuilding boxes would cost the scores' speed)
BOX_CACHE_SMALL = 0.3
SMALL_POINT = 4
# points of up to this many dimensions store cut dimensions in two bits (kernels.cut_dim)
PACKED_DIMS = 4


@dataclass
class ForestArrays:
    """Every array of a forest: a point store shared by the trees, per-tree nodes, samplers, RNGs.

    The point store holds *records* (rows of input columns), and a point is ``shingle`` consecutive
    records (AWS's internal shingling): point ``p`` is ``vals[p : p + shingle]`` flattened, so the
    overlapping shingles of a one-column series share their values, and a new record adds one row.
    Trees refer to a point by its first record. Records no sampled point covers any more are
    squeezed out when the store fills (:func:`kernels.store_compact`, which finds the points in use
    from the samplers, so there are no reference counts to keep), and the store grows or shrinks to
    a sixteenth above the records in use (:meth:`resize_store`). Free node and leaf slots are lists threaded through
    the arrays themselves (see :mod:`kernels`), and bounding boxes are cached for the first ``K``
    internal slots only, which hold the heaviest nodes.
    """

    vals: np.ndarray  # (R, C) float32: the point store, one row per record (input columns)
    meta: np.ndarray  # (META_SIZE,) int64: counters, see layout.py
    root: np.ndarray  # (F,) int32: root reference of each tree, -1 when empty
    left: np.ndarray  # (F, M) int16: child references (< M internal, >= M leaf M + slot)
    right: np.ndarray  # (F, M) int16
    cdim: np.ndarray  # cut dimensions, read through kernels.cut_dim: (F, ceil(M / 4)) uint8, four
    # 2-bit fields a byte, up to PACKED_DIMS dimensions; (F, M) int8 above (int16 above 127)
    cval: np.ndarray  # (F, M) float32: cut value (left when x[cdim] <= cval)
    nmass: np.ndarray  # (F, M) int16: points under each internal node; (F, 0) without a box cache
    bmin: np.ndarray  # (F, K, D) float32: bounding boxes of the internal slots 0..K-1
    bmax: np.ndarray  # (F, K, D) float32
    lpt: np.ndarray  # (F, S) int16, uint16 or int32 (by the store's bound): first record of each
    # leaf's point, or for a free leaf the next free leaf
    lmass: np.ndarray  # (F, S) uint8 up to 256 samples, int16 above: copies of the point in the
    # leaf minus one (a leaf holds at least one), read through kernels.leaf_mass
    ihead: np.ndarray  # (F, 2) int32: first free internal slot, cached (< K) and not
    lhead: np.ndarray  # (F,) int32: first free leaf slot
    sw: np.ndarray  # (F, S) float32: sampler weights, a max-heap
    spt: np.ndarray  # (F, S) uint8 up to 256 samples, int16 above: leaf slot of each sampled point
    sn: np.ndarray  # (F,) int32: sampler size (= tree mass)
    rng: np.ndarray  # (F,) uint64: splitmix64 state of each tree
    # (P, D) float32, P = R - shingle + 1: the points, a strided view of ``vals`` (not stored)
    pts: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._view()

    def _view(self) -> None:
        k = int(self.meta[META_SHINGLE])
        R, C = self.vals.shape
        self.pts = np.lib.stride_tricks.as_strided(
            self.vals,
            shape=(max(R - k + 1, 0), C * k),
            strides=(self.vals.strides[0], self.vals.itemsize),
            writeable=True,
        )

    @classmethod
    def allocate(
        cls,
        trees: int,
        samples: int,
        columns: int,
        seed: int,
        cache: float = 1.0,
        shingle: int = 1,
    ) -> ForestArrays:
        """Empty trees of ``samples`` leaves over points of ``shingle`` records of ``columns``
        values; ``cache`` is the fraction of internal slots with a cached bounding box."""
        M = samples  # a tree of S leaves has S - 1 internal nodes; one spare keeps the code simple
        K = min(M, round(cache * M))
        dims = columns * shingle
        bound = store_bound(trees, samples, shingle)
        cap = min(bound, samples + 64)
        heavy = max(2, math.ceil(3 * samples / K)) if K else 0
        return cls._packed(
            vals=np.zeros((cap, columns), dtype=np.float32),
            meta=np.array([0, 0, 0, shingle, heavy][:META_SIZE], dtype=np.int64),
            root=np.full(trees, -1, dtype=np.int32),
            left=np.tile(_chain_pair(K, M).astype(np.int16), (trees, 1)),
            right=np.full((trees, M), -1, dtype=np.int16),
            cdim=np.zeros(cut_shape(trees, M, dims), dtype=cut_type(dims)),
            cval=np.zeros((trees, M), dtype=np.float32),
            nmass=np.zeros((trees, M if K else 0), dtype=np.int16),
            bmin=np.zeros((trees, K, dims), dtype=np.float32),
            bmax=np.zeros((trees, K, dims), dtype=np.float32),
            lpt=np.tile(_chain(samples, -1).astype(index_type(bound)), (trees, 1)),
            lmass=np.zeros((trees, samples), dtype=mass_type(samples)),
            ihead=np.tile(
                np.array([0 if K else -1, K if K < M else -1], dtype=np.int32), (trees, 1)
            ),
            lhead=np.zeros(trees, dtype=np.int32),
            sw=np.zeros((trees, samples), dtype=np.float32),
            spt=np.zeros((trees, samples), dtype=slot_type(samples)),
            sn=np.zeros(trees, dtype=np.int32),
            rng=kernels.seed_states(seed, trees),
        )

    def tree(self) -> tuple[np.ndarray, ...]:
        """The arrays the scoring kernels read, in their argument order."""
        return (
            self.pts, self.root, self.left, self.right, self.cdim, self.cval, self.sn,
            self.bmin, self.bmax, self.lpt, self.lmass,
        )  # fmt: skip

    def cut_dims(self) -> np.ndarray:
        """Every internal slot's cut dimension, (F, M), unpacked (free slots hold stale values)."""
        return kernels.unpack_cut_dims(self.cdim, self.left.shape[1])

    def leaf_masses(self) -> np.ndarray:
        """Copies of the point in each leaf slot, (F, S) (free slots hold stale values)."""
        return self.lmass.astype(np.int64) + 1

    def points(self) -> np.ndarray:
        """The points as rows of shingled dimensions, indexed by the references in ``lpt`` (a
        strided view of the store: rows overlap, and rows no leaf refers to hold stale values)."""
        return self.pts

    @property
    def shingle(self) -> int:
        return int(self.meta[META_SHINGLE])

    @property
    def bound(self) -> int:
        """The most records the store can ever need (see :func:`store_bound`)."""
        return store_bound(self.root.shape[0], self.sw.shape[1], self.shingle)

    def resize_store(self) -> None:
        """After a compaction: grow the store when under a thirty-second of it is free, shrink it
        when under half is used; either way to the records in use plus a sixteenth (at least 64).
        The slack is the records the next compaction has to wait for: a compaction costs a pass
        over the samplers and the store, so compacting every ``live / 16`` records costs little,
        and the slack is memory every forest holds."""
        cap, live = self.vals.shape[0], int(self.meta[META_END])
        if cap - live >= max(cap // 32, self.shingle) and 2 * live >= cap:
            return
        target = min(self.bound, live + max(live // 16, 64))
        if target != cap:
            self.replace_store(self.vals[:live], target)

    def replace_store(self, vals: np.ndarray, capacity: int) -> None:
        """Hold ``vals`` (the records in use) in a store of ``capacity`` records."""
        live = len(vals)
        store = np.zeros((capacity, vals.shape[1]), dtype=np.float32)
        store[:live] = vals
        self.vals = store
        self.meta[META_END] = live
        self._view()

    @classmethod
    def _packed(cls, **arrays: np.ndarray) -> ForestArrays:
        """The arrays copied into one buffer (views 16-byte aligned), all but the point store,
        which has a block of its own (it is resized as the forest goes): two allocations per
        forest, so thousands of forests do not scatter small blocks over the heap."""
        offsets = []
        end = 0
        for name, a in arrays.items():
            offsets.append(end)
            end += 0 if name == "vals" else -(-a.nbytes // 16) * 16
        buffer = np.empty(end, dtype=np.uint8)
        views = {}
        for (name, a), at in zip(arrays.items(), offsets, strict=True):
            if name == "vals":
                views[name] = np.array(a, dtype=np.float32, order="C")
                continue
            view = buffer[at : at + a.nbytes].view(a.dtype).reshape(a.shape)
            view[...] = a
            views[name] = view
        return cls(**views)

    @classmethod
    def names(cls) -> list[str]:
        """The stored arrays (every field but the ``pts`` view)."""
        return [f.name for f in fields(cls) if f.init]

    def copy(self) -> ForestArrays:
        return ForestArrays._packed(**self.as_dict())

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.names()}

    @classmethod
    def from_dict(cls, data: dict[str, np.ndarray]) -> ForestArrays:
        arrays = {name: data[name] for name in cls.names()}
        # files written before the samplers' slots were narrowed hold them as int16
        arrays["spt"] = arrays["spt"].astype(slot_type(arrays["spt"].shape[1]), copy=False)
        return cls._packed(**arrays)

    def nbytes(self, *, in_use: bool = True) -> int:
        """Memory of the arrays; with ``in_use`` the point store counts only the records that
        stored points still use."""
        total = sum(a.nbytes for a in self.as_dict().values())
        if in_use:
            free = self.vals.shape[0] - self.records_in_use()
            total -= free * self.vals.itemsize * self.vals.shape[1]
        return total

    def references(self) -> np.ndarray:
        """The first record of each sampled point, once per sampler entry (``lpt`` of the leaves
        the samplers hold)."""
        held = np.arange(self.spt.shape[1]) < self.sn[:, None]
        return np.take_along_axis(self.lpt, self.spt.astype(np.intp), axis=1)[held].astype(np.intp)

    def points_in_use(self) -> int:
        """Stored points some tree refers to."""
        return len(np.unique(self.references()))

    def records_in_use(self) -> int:
        """Store records some sampled point covers, plus the next point's first ones."""
        end, k = int(self.meta[META_END]), self.shingle
        used = np.zeros(end, dtype=bool)
        starts = np.unique(self.references())
        for j in range(k):
            used[starts + j] = True
        if end:
            used[end - (k - 1) :] = True
        return int(used.sum())


def store_bound(trees: int, samples: int, shingle: int) -> int:
    """The most records a store can need: every tree's sample a distinct point with no record
    shared, plus the point being added (it is not stored before the store has room for it)."""
    return trees * samples * shingle + shingle


def slot_type(samples: int) -> type[np.integer[Any]]:
    """The narrowest type for leaf slots ``0 .. samples - 1`` (the samplers' entries)."""
    return np.uint8 if samples <= 1 << 8 else np.int16


def cut_type(dims: int) -> type[np.integer[Any]]:
    """The type of the cut dimensions over points of ``dims`` dimensions (see ``cut_shape``)."""
    if dims <= PACKED_DIMS:
        return np.uint8
    return np.int8 if dims <= 127 else np.int16


def cut_shape(trees: int, slots: int, dims: int) -> tuple[int, int]:
    """The shape of the cut dimensions: four slots a byte up to ``PACKED_DIMS`` dimensions (two
    bits each), one slot an element above."""
    return (trees, -(-slots // 4) if dims <= PACKED_DIMS else slots)


def mass_type(samples: int) -> type[np.integer[Any]]:
    """The narrowest type for leaf masses minus one (``0 .. samples - 1``)."""
    return np.uint8 if samples <= 1 << 8 else np.int16


def index_type(bound: int) -> type[np.integer[Any]]:
    """The narrowest type for store references below ``bound``."""
    if bound <= 1 << 15:
        return np.int16
    return np.uint16 if bound <= 1 << 16 else np.int32


def _chain(n: int, end: int, *, start: int = 0) -> np.ndarray:
    """A free list over slots ``start .. start+n-1`` in order, then ``end``: each slot's next."""
    nxt = np.arange(start + 1, start + n + 1, dtype=np.int64)
    if n:
        nxt[-1] = end
    return nxt.astype(np.int32)


def _chain_pair(K: int, M: int) -> np.ndarray:
    """The two free lists of internal slots: cached ``0..K-1`` and uncached ``K..M-1``."""
    return np.concatenate([_chain(K, -1), _chain(M - K, -1, start=K)])


@dataclass
class RCFConfig:
    """Parameters of the streaming forest, named after Kinesis's RANDOM_CUT_FOREST arguments.

    ``time_decay`` is in records (Kinesis's convention): the sampler's λ is ``1 / time_decay``.
    ``bounding_box_cache_fraction`` (AWS's name) trades memory for scoring speed and never changes a
    score; ``None`` picks it from the shingled dimensions (see :meth:`box_cache`).
    """

    number_of_trees: int = 100
    sub_sample_size: int = 256
    time_decay: float = 100_000
    shingle_size: int = 1
    seed: int | None = None
    initial_accept_fraction: float = 0.125
    bounding_box_cache_fraction: float | None = None

    def box_cache(self, dims: int) -> float:
        """The cache fraction in force for shingled points of ``dims`` dimensions."""
        if self.bounding_box_cache_fraction is not None:
            return self.bounding_box_cache_fraction
        return BOX_CACHE_SMALL if dims <= SMALL_POINT else 1.0

    def validate(self) -> None:
        _check_range("number_of_trees", self.number_of_trees, 1, 1000)
        _check_range("sub_sample_size", self.sub_sample_size, 10, 1000)
        _check_range("shingle_size", self.shingle_size, 1, 30)
        if not self.time_decay > self.sub_sample_size:
            raise UsageError(
                f"time_decay must be greater than sub_sample_size ({self.sub_sample_size}), "
                f"got {self.time_decay}"
            )
        for name in ("initial_accept_fraction", "bounding_box_cache_fraction"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be in 0..1, got {value}")


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise UsageError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")


@dataclass
class RCFResult:
    """Scores of a batch of records, with attributions per input column when asked for.

    ``high``/``low`` have one column per *input* column: the attribution summed over the shingle's
    positions, as Kinesis reports it. ``high + low`` sums to ``scores`` row by row.
    """

    scores: np.ndarray
    high: np.ndarray | None = None
    low: np.ndarray | None = None


@dataclass
class RandomCutForest:
    """A streaming RCF over records of ``dimensions`` numeric columns (set by the first record)."""

    config: RCFConfig = field(default_factory=RCFConfig)
    dimensions: int | None = None
    arrays_: ForestArrays | None = None
    shingler_: Shingler | None = None
    records_: int = 0
    seed_: int = 0

    def __post_init__(self) -> None:
        self.config.validate()
        if self.config.seed is None:
            self.seed_ = int(np.random.SeedSequence().entropy % (1 << 62))  # type: ignore[operator]
        else:
            self.seed_ = int(self.config.seed)
        if self.dimensions is not None:
            self._build(self.dimensions)

    # -- construction -----------------------------------------------------------------------------
    def _build(self, dims: int) -> None:
        if not 1 <= dims <= MAX_INPUT_COLUMNS:
            raise UsageError(
                f"the forest takes 1..{MAX_INPUT_COLUMNS} numeric input columns, got {dims}"
            )
        self.dimensions = dims
        c = self.config
        self.arrays_ = ForestArrays.allocate(
            c.number_of_trees,
            c.sub_sample_size,
            dims,
            self.seed_,
            c.box_cache(dims * c.shingle_size),
            c.shingle_size,
        )
        self.shingler_ = Shingler(dims, c.shingle_size)

    def _as_matrix(self, X: Any) -> np.ndarray:
        A = np.asarray(X, dtype=np.float64)
        if A.ndim == 1:
            A = A.reshape(-1, 1) if self.dimensions in (None, 1) else A.reshape(1, -1)
        if A.ndim != 2:
            raise InputError(f"records must be a 2-D array (rows × columns), got shape {A.shape}")
        if self.dimensions is None:
            self._build(A.shape[1])
        if A.shape[1] != self.dimensions:
            raise InputError(
                f"records have {A.shape[1]} columns, the forest was built for {self.dimensions}",
                expected=f"{self.dimensions} numeric columns",
            )
        bad = ~np.isfinite(A)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InputError(
                f"record {int(row)} column {int(col)} is {float(A[row, col])}",
                expected="finite numbers (fill or drop gaps first)",
            )
        return A

    @property
    def shingled_dimensions(self) -> int:
        if self.dimensions is None:
            raise NotFittedError("the forest has seen no record yet")
        return self.dimensions * self.config.shingle_size

    # -- streaming ------------------------------------------------------------------------------
    def process(self, X: Any, *, explain: bool = False) -> RCFResult:
        """Score then update with each record of ``X`` in order (rows × input columns)."""
        A = self._as_matrix(X)
        assert self.arrays_ is not None and self.shingler_ is not None
        c = self.config
        n = len(A)
        shingled, full = self.shingler_.push(A)
        index = self.records_ + np.arange(n)
        mode = np.where(full, 1, 0).astype(np.int8)
        mode[full & (index >= c.sub_sample_size)] = 3 if explain else 2
        scores = np.zeros(n)
        D = shingled.shape[1]
        hi = np.zeros((n, D)) if explain else np.zeros((0, D))
        lo = np.zeros((n, D)) if explain else np.zeros((0, D))
        self._run(shingled, mode, scores, hi, lo)
        self.records_ += n
        if not explain:
            return RCFResult(scores)
        return RCFResult(scores, self._fold(hi), self._fold(lo))

    def _run(
        self, X: np.ndarray, mode: np.ndarray, scores: np.ndarray, hi: np.ndarray, lo: np.ndarray
    ) -> None:
        a = self.arrays_
        assert a is not None
        lam = 1.0 / float(self.config.time_decay)
        start = 0
        while start < len(X):
            done = kernels.forest_step(
                X[start:], mode[start:], scores[start:], hi[start:] if len(hi) else hi,
                lo[start:] if len(lo) else lo,
                a.vals, a.pts, a.meta,
                a.root, a.left, a.right, a.cdim, a.cval, a.nmass, a.bmin, a.bmax, a.lpt, a.lmass,
                a.ihead, a.lhead, a.sw, a.spt, a.sn, a.rng,
                lam, float(self.config.initial_accept_fraction),
            )  # fmt: skip
            start += int(done)
            if start < len(X):  # the kernel compacted the full store: resize it if it is due
                a.resize_store()

    def _fold(self, v: np.ndarray) -> np.ndarray:
        """Sum shingled dimensions per input column (the shingle is blocks of input columns)."""
        assert self.dimensions is not None
        return v.reshape(len(v), self.config.shingle_size, self.dimensions).sum(axis=1)

    def score(self, x: Any) -> float:
        """Score one record without learning it (the score ``process`` would give it next)."""
        return float(self.score_and_explain(x, explain=False).scores[0])

    def score_and_explain(self, x: Any, *, explain: bool = True) -> RCFResult:
        """Score (and attribute) one record without learning it."""
        A = self._as_matrix(x)
        if len(A) != 1:
            raise InputError(f"expected one record, got {len(A)}")
        assert self.arrays_ is not None and self.shingler_ is not None
        point, full = self.shingler_.peek(A[0])
        D = self.shingled_dimensions
        if not full or self.records_ < self.config.sub_sample_size:
            zero = np.zeros((1, self.dimensions or 1))
            return RCFResult(
                np.zeros(1), zero if explain else None, zero.copy() if explain else None
            )
        q = point.reshape(1, D)
        if not explain:
            return RCFResult(kernels.score_rows(q, *self.arrays_.tree()))
        hi, lo = kernels.attribute_rows(q, *self.arrays_.tree())
        return RCFResult((hi + lo).sum(axis=1), self._fold(hi), self._fold(lo))

    def update(self, x: Any) -> None:
        """Learn one record (or several, in order) without scoring them."""
        A = self._as_matrix(x)
        assert self.arrays_ is not None and self.shingler_ is not None
        shingled, full = self.shingler_.push(A)
        mode = full.astype(np.int8)
        empty = np.zeros((0, shingled.shape[1]))
        self._run(shingled, mode, np.zeros(len(A)), empty, empty)
        self.records_ += len(A)

    # -- introspection, copies --------------------------------------------------------------------
    @property
    def is_warm(self) -> bool:
        return self.records_ >= self.config.sub_sample_size

    def memory_bytes(self, *, in_use: bool = True) -> int:
        return 0 if self.arrays_ is None else self.arrays_.nbytes(in_use=in_use)

    def copy(self) -> RandomCutForest:
        """An independent copy (for a hot swap: update the copy, then replace the live one)."""
        twin = RandomCutForest(
            RCFConfig(**{f.name: getattr(self.config, f.name) for f in fields(RCFConfig)})
        )
        twin.seed_ = self.seed_
        twin.dimensions = self.dimensions
        twin.arrays_ = None if self.arrays_ is None else self.arrays_.copy()
        twin.shingler_ = None if self.shingler_ is None else self.shingler_.copy()
        twin.records_ = self.records_
        return twin

    def max_score(self) -> float:
        """Upper end of the score scale: ``log2(1 + sub_sample_size)``."""
        return math.log2(1 + self.config.sub_sample_size)

    @property
    def sequence(self) -> int:
        """Records that reached the trees (after the shingle filled)."""
        return 0 if self.arrays_ is None else int(self.arrays_.meta[META_SEQ])

    @property
    def weight_base(self) -> int:
        return 0 if self.arrays_ is None else int(self.arrays_.meta[META_WBASE])
