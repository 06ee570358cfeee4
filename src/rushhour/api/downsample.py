"""Server-side downsampling: min, max and mean per pixel-bucket, computed by the database.

A month of 1-minute data is 43,200 buckets per series; a chart has about a thousand pixels. The store
groups buckets by ``start - start % step`` so only one row per pixel leaves the database.

>>> choose_step(0, 86400, 60, 1000)
120
>>> choose_step(0, 3600, 60, 1000)
60
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, literal, select

from rushhour.store import schema as t
from rushhour.store.db import Store


def choose_step(start: int, end: int, width: int, points: int) -> int:
    """The smallest multiple of the bucket width giving at most ``points`` steps over [start, end)."""
    buckets = max(1, math.ceil((end - start) / width))
    return width * max(1, math.ceil(buckets / max(points, 1)))


def downsample(
    store: Store, series_id: int, start: int, end: int, step: int
) -> dict[str, list[Any]]:
    """Per step: time, min, max, mean, count of values; expected band and peak score from ``scores``."""
    b = t.buckets
    key = (b.c.start - b.c.start % literal(step)).label("t")
    q = (
        select(key, func.min(b.c.value), func.max(b.c.value), func.avg(b.c.value), func.count())
        .where((b.c.series_id == series_id) & (b.c.start >= start) & (b.c.start < end))
        .group_by(key)
        .order_by(key)
    )
    s = t.scores
    skey = (s.c.start - s.c.start % literal(step)).label("t")
    sq = (
        select(skey, func.avg(s.c.expected), func.avg(s.c.deviation), func.max(s.c.score))
        .where((s.c.series_id == series_id) & (s.c.start >= start) & (s.c.start < end))
        .group_by(skey)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
        scores = {int(r[0]): r[1:] for r in conn.execute(sq).all()}
    out: dict[str, list[Any]] = {
        k: [] for k in ("t", "min", "max", "mean", "count", "expected", "deviation", "score")
    }
    for ts, lo, hi, mean, n in rows:
        out["t"].append(int(ts))
        out["min"].append(float(lo))
        out["max"].append(float(hi))
        out["mean"].append(round(float(mean), 4))
        out["count"].append(int(n))
        exp, dev, score = scores.get(int(ts), (None, None, None))
        out["expected"].append(_num(exp))
        out["deviation"].append(_num(dev))
        out["score"].append(_num(score))
    return out


def sparklines(
    store: Store, series_ids: Sequence[int], end: int, span: int, points: int
) -> dict[int, list[float]]:
    """Mean values of the last ``span`` seconds before ``end`` in ``points`` steps, per series."""
    if not series_ids:
        return {}
    step = max(1, span // points)
    b = t.buckets
    key = (b.c.start - b.c.start % literal(step)).label("t")
    q = (
        select(b.c.series_id, key, func.avg(b.c.value))
        .where(b.c.series_id.in_(list(series_ids)) & (b.c.start >= end - span) & (b.c.start < end))
        .group_by(b.c.series_id, key)
        .order_by(b.c.series_id, key)
    )
    out: dict[int, list[float]] = {int(i): [] for i in series_ids}
    with store.engine.connect() as conn:
        for sid, _, mean in conn.execute(q):
            out[int(sid)].append(round(float(mean), 2))
    return out


def _num(v: Any) -> float | None:
    return None if v is None else round(float(v), 4)
