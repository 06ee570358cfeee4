"""When a past surprise is comparable to a new one: the rule the novelty and recurrence stages share.

A past surprise ``u'`` (in ``-log10 Q`` units) is comparable to a new surprise ``u`` when
``u' >= rel·u - delta``: a little smaller counts (``rel`` of it, less ``delta`` decades), so a
recurring spike whose size wanders still matches itself, while a much larger surprise does not
match a smaller past one. :mod:`rushhour.detect.novelty` counts how often comparable surprises
came; :mod:`rushhour.detect.recurrence` looks for them at the same time of earlier days.

>>> float(level(15.0, REL, DELTA, 0.0))
10.0
>>> float(level(5.0, REL, DELTA, 7.0))   # never below the floor
7.0
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: the default comparison: ``u' >= 0.8·u - 2``
REL = 0.8
DELTA = 2.0


def valid_rel(rel: float) -> bool:
    """Whether ``rel`` is a usable fraction (``0 < rel <= 1``)."""
    return 0 < rel <= 1


def single_series(n: int) -> np.ndarray:
    """The state rows of ``n`` buckets of one series (all row 0), for a stage's ``cap_rows``."""
    return np.zeros(n, dtype=np.int64)


@nb.njit(cache=True)
def level(u: float, rel: float, delta: float, floor: float) -> float:  # pragma: no cover - compiled
    """The least past surprise comparable to ``u`` (at least ``floor``).

    Numba's disk cache of a compiled caller does not notice a change here: touch the callers
    (``novelty._cap``, ``recurrence._cap``) when changing it."""
    return max(u * rel - delta, floor)
