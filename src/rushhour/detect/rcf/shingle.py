"""Internal shingling: the forest sees the last ``size`` records side by side, oldest first.

>>> import numpy as np
>>> s = Shingler(columns=1, size=3)
>>> points, full = s.push(np.array([[1.0], [2.0], [3.0], [4.0]]))
>>> points.tolist(), full.tolist()
([[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]], [False, False, True, True])
>>> s.peek(np.array([5.0]))[0].tolist()
[3.0, 4.0, 5.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Shingler:
    """Keeps the last ``size - 1`` records and turns new records into shingled points."""

    columns: int
    size: int
    buffer_: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    seen_: int = 0

    def __post_init__(self) -> None:
        if self.buffer_.shape != (self.size - 1, self.columns):
            self.buffer_ = np.zeros((self.size - 1, self.columns), dtype=np.float32)

    def push(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shingled points (float32, one row per record) and whether each shingle is full."""
        n = len(X)
        k = self.size
        if n == 1:  # the live pipeline's case, without the sliding windows' overhead
            point = np.empty((k, self.columns), dtype=np.float32)
            point[:-1] = self.buffer_
            point[-1] = X[0]
            self.buffer_ = point[1:].copy()
            self.seen_ += 1
            return point.reshape(1, -1), np.array([self.seen_ >= k])
        rows = np.concatenate([self.buffer_, X.astype(np.float32)])
        windows = np.lib.stride_tricks.sliding_window_view(rows, (k, self.columns))[:, 0]
        points = np.ascontiguousarray(windows.reshape(n, k * self.columns))
        full = (self.seen_ + np.arange(n) + 1) >= k
        if k > 1:
            self.buffer_ = rows[-(k - 1) :].copy()
        self.seen_ += n
        return points, full

    def peek(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        """The shingled point ``x`` would make, without remembering ``x``."""
        rows = np.concatenate([self.buffer_, x.astype(np.float32).reshape(1, self.columns)])
        return rows.reshape(-1), self.seen_ + 1 >= self.size

    def copy(self) -> Shingler:
        return Shingler(self.columns, self.size, self.buffer_.copy(), self.seen_)
