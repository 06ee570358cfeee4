"""Rebuilding the online detectors at start, from what the store holds (one query for all series).

The forests and the default detectors learn every closed bucket, so their state must survive a
restart exactly as if the process had never stopped:

* each **forest** is rebuilt from its series' newest ``RCF_HISTORY`` closed buckets (deterministic);
* each **default detector** restarts from its newest stored snapshot and replays the stored buckets
  closed after it. Snapshots commit in the same transaction as the buckets they consumed (every
  ``detect.default_snapshot`` buckets per series, staggered across series), and the detector's result
  does not depend on how its input is chunked, so the rebuilt state equals the uninterrupted one.
  A series without a snapshot replays all its closed buckets (then gets a snapshot at once). Every
  series' replay is one step of the bank's fleet of default detectors. A snapshot taken with another
  configuration or bucket width is not used: that series replays from its first bucket.

Replays read stored values: a record that arrived late for an already scored bucket reaches the
default detector only through such a replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rushhour.pipeline.detectors import RCF_HISTORY, DetectorBank
from rushhour.store.db import SeriesRef, Store

SNAPSHOT_PREFIX = "detector:default:"


def snapshot_name(series_id: int) -> str:
    return f"{SNAPSHOT_PREFIX}{series_id}"


def snapshot_due(series_id: int, starts: Any, width: int, every: int) -> bool:
    """Whether one of a series' closed bucket ``starts`` is a snapshot point (staggered by series).

    >>> snapshot_due(3, [57 * 60], 60, 60), snapshot_due(3, [58 * 60], 60, 60)
    (True, False)
    """
    return any((int(s) // width + series_id) % every == 0 for s in starts)


def snapshot_of(bank: DetectorBank, key: str, through: int) -> dict[str, Any] | None:
    """A series' default detector state, valid for the stored buckets before ``through``."""
    state = bank.default_snapshot(key)
    if state is None:
        return None
    return {"through": int(through), "config": repr(bank.default_config), "state": state}


@dataclass
class WarmUp:
    """What a warm-up did: the series replayed from their first bucket."""

    from_scratch: list[str] = field(default_factory=list)


def warm_up(
    bank: DetectorBank,
    store: Store,
    by_id: dict[int, SeriesRef],
    closed_until: int | None,
    width: int,
) -> WarmUp:
    """Rebuild every forest and default detector from the store, as of ``closed_until``."""
    bank.reset_forests()
    bank.prime()
    bank.reset_defaults()
    done = WarmUp()
    if closed_until is None:
        return done
    rcf = bank.s.detect.rcf
    snaps = _snapshots(bank, store, by_id, width) if bank.default_config is not None else {}
    since = int(closed_until) - RCF_HISTORY * width if rcf else int(closed_until)
    missing: list[int] = []
    if bank.default_config is not None:
        since = min([since, *(int(s["through"]) for s in snaps.values())])
        missing = [sid for sid in by_id if sid not in snaps]
    sids, starts, values = _stored(store, since, int(closed_until), missing)
    bounds = np.flatnonzero(np.diff(sids)) + 1
    replay: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(sids)], strict=True):
        if lo == hi or int(sids[lo]) not in by_id:
            continue
        sid, st, x = int(sids[lo]), starts[lo:hi], values[lo:hi]
        key = by_id[sid].key
        if rcf:
            keep = st >= int(closed_until) - RCF_HISTORY * width
            bank.warm_forest(key, x[keep])
        if bank.default_config is not None:
            snap = snaps.pop(sid, None)
            replay.append(_default_start(bank, key, snap, st, x))
            if snap is None:
                done.from_scratch.append(key)
    for sid, snap in snaps.items():  # snapshots of series with nothing stored after them
        bank.restore_default(by_id[sid].key, snap["state"])
    if replay:  # every series' stored buckets after its snapshot, in one step of the fleet
        rows, st, x = (np.concatenate(p) for p in zip(*replay, strict=True))
        if len(rows):
            bank.default_run(rows, st, x)
    return done


def _stored(
    store: Store, since: int, until: int, missing: list[int], chunk: int = 500
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Buckets in ``[since, until)`` of every series, and the older ones of the ``missing`` series
    (those without a snapshot), ordered by series and start."""
    parts = [store.bucket_arrays(since, until)]
    for i in range(0, len(missing), chunk):
        parts.append(store.bucket_arrays(0, since, missing[i : i + chunk]))
    if len(parts) == 1:
        return parts[0]
    sids, starts, values = (np.concatenate(p) for p in zip(*parts, strict=True))
    order = np.lexsort((starts, sids))
    return sids[order], starts[order], values[order]


def _snapshots(
    bank: DetectorBank, store: Store, by_id: dict[int, SeriesRef], width: int
) -> dict[int, Any]:
    """Stored snapshots of known series taken with the current configuration and bucket width
    (the others replay from scratch)."""
    out = {}
    for name, snap in store.checkpoints_with_prefix(SNAPSHOT_PREFIX).items():
        sid = int(name.removeprefix(SNAPSHOT_PREFIX))
        taken = snap.get("state", {}).get("bucket_seconds")
        same_width = taken is None or float(taken) == float(width)
        if sid in by_id and snap.get("config") == repr(bank.default_config) and same_width:
            out[sid] = snap
    return out


def _default_start(
    bank: DetectorBank,
    key: str,
    snap: dict[str, Any] | None,
    starts: np.ndarray,
    values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start a series' default detector from its snapshot (or afresh without one): its row, and
    the stored buckets it must replay, as fleet rows, starts and values."""
    if snap is not None:
        bank.restore_default(key, snap["state"])
        keep = starts >= int(snap["through"])
        starts, values = starts[keep], values[keep]
    row = int(bank.default_rows([key])[0])
    return np.full(len(starts), row, dtype=np.int64), starts, values
