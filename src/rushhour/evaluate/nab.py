"""NAB scoring: the Numenta Anomaly Benchmark's published method, re-implemented and vectorised.

A file's rows are split into a probationary period (the first ``min(floor(0.15·n), 750)`` rows, where
detections are ignored) and the rest. Each remaining row gets a *sweep score*: inside a labelled window
(both ends inclusive) a detection is worth ``tpWeight · σ(y) / σ(-1)`` with ``y`` its relative position
(``-1`` at the window's start); outside, ``fpWeight · σ(y)`` with ``y`` the distance after the preceding
window in window lengths, or ``-fpWeight`` before the first window. ``σ(y) = 2 / (1 + e^{5y}) - 1``,
clipped to ``-1`` from ``y >= 3``. Only the earliest detection of a window counts (its sweep score is the
window's maximum); a window without one costs ``-fnWeight``. A threshold sweep over every distinct
score, highest first, finds the single global threshold that maximises the summed score; the result is
normalised so that the null detector scores 0 and the perfect one 100.

>>> import numpy as np
>>> ts = np.arange(100)
>>> f = prepare_file("a.csv", ts, np.zeros(100), [(50, 59)])
>>> perfect = np.zeros(100); perfect[50] = 1.0
>>> f = prepare_file("a.csv", ts, perfect, [(50, 59)])
>>> round(score_at([f], STANDARD, 0.5).normalized, 6)
100.0
>>> round(score_at([f], STANDARD, 2.0).normalized, 6)
0.0
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rushhour.errors import InputError

PROBATION_PERCENT = 0.15
#: NAB caps the probationary period at 15% of 5000 rows.
PROBATION_CAP = PROBATION_PERCENT * 5000


@dataclass(frozen=True)
class Profile:
    """A scoring profile: the weights of NAB's cost matrix."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


STANDARD = Profile("standard", 1.0, 0.11, 1.0)
LOW_FP = Profile("reward_low_FP_rate", 1.0, 0.22, 1.0)
LOW_FN = Profile("reward_low_FN_rate", 1.0, 0.11, 2.0)
PROFILES = (STANDARD, LOW_FP, LOW_FN)


def load_profiles(path: Path) -> tuple[Profile, ...]:
    """Read NAB's ``profiles.json`` (``{name: {"CostMatrix": {tpWeight, fpWeight, fnWeight}}}``)."""
    try:
        data = json.loads(path.read_text())
        return tuple(
            Profile(
                name,
                float(v["CostMatrix"]["tpWeight"]),
                float(v["CostMatrix"]["fpWeight"]),
                float(v["CostMatrix"]["fnWeight"]),
            )
            for name, v in data.items()
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"cannot read scoring profiles: {exc}",
            source=str(path),
            expected='{"standard": {"CostMatrix": {"tpWeight": 1, "fpWeight": 0.11, "fnWeight": 1}}}',
        ) from exc


def probationary_length(n: int) -> int:
    """Rows at the start of a file whose detections are ignored.

    >>> probationary_length(1000), probationary_length(4032), probationary_length(22695)
    (150, 604, 750)
    """
    return int(min(math.floor(PROBATION_PERCENT * n), PROBATION_CAP))


def scaled_sigmoid(y: np.ndarray) -> np.ndarray:
    """NAB's ``2·sigmoid(-5y) - 1``, and ``-1`` from ``y >= 3`` on.

    >>> [round(float(v), 5) for v in scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.0]))]
    [0.98661, 0.84828, 0.0, -0.98661, -1.0]
    """
    y = np.asarray(y, dtype=float)
    out = 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0
    return np.where(y >= 3.0, -1.0, out)


@dataclass(frozen=True)
class FileRows:
    """One file's scorable rows: relative position terms, independent of the cost matrix.

    ``window`` is the window number of each row (``-1`` outside any window, ``-2`` probationary);
    ``sig`` is the unweighted sigmoid term (already divided by ``σ(-1)`` inside windows).
    """

    name: str
    scores: np.ndarray
    window: np.ndarray
    sig: np.ndarray
    n_windows: int


def window_indices(
    timestamps: np.ndarray, windows: Sequence[tuple[Any, Any]]
) -> list[tuple[int, int]]:
    """Row ranges ``[lo, hi]`` (inclusive) covered by windows given as timestamps (inclusive ends).

    Rows are taken in file order, so repeated or out-of-order timestamps (NAB has both) do not move
    a window: it spans from the first row inside it to the last.

    >>> window_indices(np.array([0, 10, 20, 30]), [(5, 20)])
    [(1, 2)]
    """
    ts = np.asarray(timestamps)
    out = []
    for start, end in windows:
        inside = np.flatnonzero((ts >= start) & (ts <= end))
        if inside.size:
            out.append((int(inside[0]), int(inside[-1])))
    return out


def prepare_file(
    name: str, timestamps: np.ndarray, scores: np.ndarray, windows: Sequence[tuple[Any, Any]]
) -> FileRows:
    """Compute each row's window membership and sigmoid term (NAB's ``calcSweepScore``)."""
    n = len(scores)
    if len(timestamps) != n:
        raise InputError(
            f"{n} scores for {len(timestamps)} timestamps", source=name, field="anomaly_score"
        )
    ranges = window_indices(np.asarray(timestamps), windows)
    window = np.full(n, -1, dtype=np.int64)
    sig = np.empty(n, dtype=float)
    idx = np.arange(n)
    max_tp = float(scaled_sigmoid(np.array([-1.0]))[0])
    prev_right: int | None = None
    prev_width = 0.0
    cursor = 0
    for k, (lo, hi) in enumerate(ranges):
        # rows between the previous window (or the start) and this one are false-positive rows
        _fill_outside(sig, idx, cursor, lo, prev_right, prev_width)
        width = float(hi - lo + 1)
        window[lo : hi + 1] = k
        sig[lo : hi + 1] = scaled_sigmoid(-(hi - idx[lo : hi + 1] + 1) / width) / max_tp
        prev_right, prev_width, cursor = hi, width, hi + 1
    _fill_outside(sig, idx, cursor, n, prev_right, prev_width)
    probation = probationary_length(n)
    window[:probation] = -2
    # a window lying wholly in the probationary period is neither a hit nor a miss: renumber the rest
    inside = window >= 0
    counted, dense = np.unique(window[inside], return_inverse=True)
    window[inside] = dense
    return FileRows(name, np.asarray(scores, dtype=float), window, sig, len(counted))


def _fill_outside(
    sig: np.ndarray, idx: np.ndarray, lo: int, hi: int, prev_right: int | None, prev_width: float
) -> None:
    if hi <= lo:
        return
    if prev_right is None:
        sig[lo:hi] = -1.0
    elif prev_width <= 1:
        # NAB divides by (width - 1); a one-row window makes every later row "far" from it
        sig[lo:hi] = -1.0
    else:
        sig[lo:hi] = scaled_sigmoid(np.abs(prev_right - idx[lo:hi]) / (prev_width - 1.0))


@dataclass(frozen=True)
class Sweep:
    """Raw summed score for each candidate threshold (highest first, ``inf`` = detect nothing)."""

    thresholds: np.ndarray
    raw: np.ndarray
    n_windows: int
    profile: Profile

    @property
    def null(self) -> float:
        return -self.profile.fn_weight * self.n_windows

    @property
    def perfect(self) -> float:
        return self.profile.tp_weight * self.n_windows

    def normalize(self, raw: float) -> float:
        span = self.perfect - self.null
        return 100.0 * (raw - self.null) / span if span > 0 else 0.0

    def best(self) -> tuple[float, float]:
        """The threshold with the highest score (the highest such threshold on ties) and its score."""
        k = int(np.argmax(self.raw))
        return float(self.thresholds[k]), float(self.raw[k])


def _stack(files: Sequence[FileRows]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    scores, wins, sigs, offset = [], [], [], 0
    for f in files:
        keep = f.window != -2
        w = f.window[keep].copy()
        w[w >= 0] += offset
        offset += f.n_windows
        scores.append(f.scores[keep])
        wins.append(w)
        sigs.append(f.sig[keep])
    if not scores:
        empty = np.zeros(0)
        return empty, np.zeros(0, dtype=np.int64), empty, 0
    return np.concatenate(scores), np.concatenate(wins), np.concatenate(sigs), offset


def sweep(files: Sequence[FileRows], profile: Profile) -> Sweep:
    """Summed raw score at every distinct score used as threshold (NAB's ``calcScoreByThreshold``)."""
    scores, wins, sigs, n_windows = _stack(files)
    order = np.argsort(-scores, kind="stable")
    s, w, g = scores[order], wins[order], sigs[order]
    inc = np.where(w < 0, profile.fp_weight * g, 0.0)
    inw = np.flatnonzero(w >= 0)
    if inw.size:
        # per window, the running maximum of sweep scores in threshold order; each row adds the rise
        tp = profile.tp_weight * g[inw]
        grp = w[inw]
        by_win = np.argsort(grp, kind="stable")
        gs, ts = grp[by_win], tp[by_win]
        shift = gs * 10.0 * (abs(profile.tp_weight) + 1.0)
        run = np.maximum.accumulate(ts + shift) - shift
        first = np.r_[True, gs[1:] != gs[:-1]]
        before = np.where(first, -profile.fn_weight, np.r_[0.0, run[:-1]])
        rise = np.empty_like(run)
        rise[by_win] = np.maximum(run - before, 0.0)
        inc[inw] = rise
    total = -profile.fn_weight * n_windows + np.cumsum(inc)
    last_of_tie = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, dtype=bool)
    thresholds = np.r_[np.inf, s[last_of_tie]]
    raw = np.r_[-profile.fn_weight * n_windows, total[last_of_tie]]
    return Sweep(thresholds, raw, n_windows, profile)


@dataclass(frozen=True)
class ProfileScore:
    """A profile's score over a corpus at one threshold, with per-file raw scores."""

    profile: str
    threshold: float
    raw: float
    normalized: float
    per_file: dict[str, float]
    counts: dict[str, int]


def file_raw(f: FileRows, profile: Profile, threshold: float) -> tuple[float, dict[str, int]]:
    """One file's raw score with detections at ``score >= threshold``, and tp/fp/fn window counts."""
    keep = f.window != -2
    det = keep & (f.scores >= threshold)
    fp_rows = det & (f.window == -1)
    raw = float(profile.fp_weight * f.sig[fp_rows].sum())
    tp = 0
    for k in range(f.n_windows):
        hits = np.flatnonzero(det & (f.window == k))
        if hits.size:
            raw += profile.tp_weight * float(f.sig[hits[0]])
            tp += 1
        else:
            raw -= profile.fn_weight
    return raw, {"tp": tp, "fn": f.n_windows - tp, "fp": int(fp_rows.sum())}


def score_at(files: Sequence[FileRows], profile: Profile, threshold: float) -> ProfileScore:
    """Score a corpus at a fixed threshold (for decisions given as 0/1, use ``threshold=0.5``)."""
    per_file: dict[str, float] = {}
    counts = {"tp": 0, "fn": 0, "fp": 0}
    n_windows = 0
    for f in files:
        raw, c = file_raw(f, profile, threshold)
        per_file[f.name] = raw
        for key in counts:
            counts[key] += c[key]
        n_windows += f.n_windows
    total = sum(per_file.values())
    sw = Sweep(np.zeros(0), np.zeros(0), n_windows, profile)
    return ProfileScore(profile.name, threshold, total, sw.normalize(total), per_file, counts)


def optimize(files: Sequence[FileRows], profile: Profile) -> ProfileScore:
    """The best single global threshold for ``profile`` and the corpus score there (NAB's optimizer)."""
    sw = sweep(files, profile)
    threshold, _ = sw.best()
    return score_at(files, profile, threshold)
