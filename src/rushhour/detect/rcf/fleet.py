"""Scoring many streaming forests in one compiled call, forests spread over threads.

The live pipeline has a forest per series and scores one record per series each minute. Called
one forest at a time, each call pays Python's and Numba's per-call overhead and runs on one core.
:class:`ForestTable` keeps every forest's arrays in typed lists (references, no copies: the
forests' memory layout is theirs), and :meth:`ForestTable.attribute` scores and attributes one
record per forest in :func:`kernels.attribute_forests`, forests in parallel. It only reads the
forests: learning stays each forest's own :meth:`RandomCutForest.update`.

A forest's arrays change identity when its point store is resized or the forest is replaced; the
table notices (it compares the points view it holds with the forest's) and refreshes that slot.

The typed lists are built and changed only through the small compiled functions below, cached on
disk like the kernels: the lists' own Python-side methods compile afresh in each process (about
1.2 s for the appends and as much again for a refresh, per configuration).
"""

from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np
from numba import typed, typeof

from rushhour.detect.rcf import kernels
from rushhour.detect.rcf.forest import RandomCutForest

# the arrays the scoring kernels read, in ForestArrays.tree() order
_FIELDS = ("pts", "root", "left", "right", "cdim", "cval", "sn", "bmin", "bmax", "lpt", "lmass")


class ForestTable:
    """Typed lists of many forests' arrays, one slot per forest (slots are never reused)."""

    #: the forest configurations whose typed lists this process compiled (DetectorBank.prime)
    primed: ClassVar[set[tuple[object, ...]]] = set()

    def __init__(self) -> None:
        self._slot: dict[int, int] = {}  # id(forest) -> slot
        self._forests: list[RandomCutForest] = []  # keeps ids stable while a slot exists
        self._held: list[np.ndarray] = []  # the points view each slot was filled from
        self._lists: tuple[typed.List, ...] | None = None
        self._types: tuple[object, ...] | None = None

    def __len__(self) -> int:
        return len(self._forests)

    def slots(self, forests: list[RandomCutForest]) -> np.ndarray | None:
        """The slots of ``forests`` (added or refreshed as needed), or None when one of them does
        not share the others' array types (a forest of another configuration)."""
        out = np.empty(len(forests), dtype=np.int64)
        for i, forest in enumerate(forests):
            a = forest.arrays_
            assert a is not None
            slot = self._slot.get(id(forest))
            if slot is None:
                if not self._add(forest):
                    return None
                slot = len(self._forests) - 1
            elif self._held[slot] is not a.pts:
                self._refresh(slot, forest)
            out[i] = slot
        return out

    def _add(self, forest: RandomCutForest) -> bool:
        a = forest.arrays_
        assert a is not None
        arrays = [getattr(a, name) for name in _FIELDS]
        kinds = tuple(typeof(x) for x in arrays)
        if self._lists is None:
            self._types = kinds
            self._lists = tuple(_list_of(x) for x in arrays)
        elif kinds != self._types:
            return False
        else:
            for lst, x in zip(self._lists, arrays, strict=True):
                _append(lst, x)
        self._slot[id(forest)] = len(self._forests)
        self._forests.append(forest)
        self._held.append(a.pts)
        return True

    def _refresh(self, slot: int, forest: RandomCutForest) -> None:
        a = forest.arrays_
        assert a is not None and self._lists is not None
        for lst, name in zip(self._lists, _FIELDS, strict=True):
            _put(lst, slot, getattr(a, name))
        self._held[slot] = a.pts

    def attribute(
        self, queries: np.ndarray, slots: np.ndarray, threads: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores and (high, low) attributions over the shingled dimensions of ``queries`` (float32,
        one shingled point per row) against the forests in ``slots`` (distinct), on up to
        ``threads`` threads; the forests do not learn the queries."""
        assert self._lists is not None
        n, dims = queries.shape
        scores = np.zeros(n)
        hi = np.zeros((n, dims))
        lo = np.zeros((n, dims))
        if n:
            most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
            numba.set_num_threads(max(1, min(threads, most)))
            kernels.attribute_forests(queries, slots, *self._lists, scores, hi, lo)  # type: ignore[call-arg]
        return scores, hi, lo


@numba.njit(cache=True)
def _list_of(x: np.ndarray) -> typed.List:  # pragma: no cover - compiled
    """A typed list holding ``x``."""
    out = typed.List()
    out.append(x)
    return out


@numba.njit(cache=True)
def _append(lst: typed.List, x: np.ndarray) -> None:  # pragma: no cover - compiled
    lst.append(x)


@numba.njit(cache=True)
def _put(lst: typed.List, i: int, x: np.ndarray) -> None:  # pragma: no cover - compiled
    lst[i] = x
