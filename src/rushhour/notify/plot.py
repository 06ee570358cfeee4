"""The alert plot: a PNG (matplotlib Agg) readable at Slack thumbnail size (~360 px wide).

The upper panel shows the last hours of the series, the expected value and its band, the episode
shaded and the anomalous buckets as red dots; the lower panel shows the anomaly score against its
threshold. Large fonts, few ticks, no legend box: at 360 px only shapes and a headline survive.
Rendering uses the object API (no pyplot state), so it is safe in threads.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from matplotlib.dates import DateFormatter, HourLocator, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from sqlalchemy import select

from rushhour.notify.alert import Alert
from rushhour.store import schema as t
from rushhour.store.db import Store
from rushhour.timeutil import zone

WIDTH_IN, HEIGHT_IN, DPI = 7.2, 4.2, 100  # 720 x 420 px: halves cleanly to a 360 px thumbnail
RED, BLUE, BAND, GREY = "#d62728", "#1f4e99", "#c9d6ea", "#555555"


@dataclass(frozen=True)
class PlotData:
    """Aligned arrays over the plotted window (UTC index)."""

    index: pd.DatetimeIndex
    value: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    anomalous: np.ndarray


def _human(v: float, _pos: object = None) -> str:
    """Short tick labels.

    >>> _human(12400), _human(6000), _human(950), _human(2_500_000)
    ('12.4k', '6k', '950', '2.5M')
    """
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.0f}"


def render(alert: Alert, data: PlotData) -> bytes:
    """The PNG bytes of the alert plot."""
    tz = zone(alert.timezone)
    idx = data.index.tz_convert(tz)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    gs = fig.add_gridspec(
        2, 1, height_ratios=[3.2, 1], hspace=0.08, left=0.105, right=0.975, top=0.80, bottom=0.09
    )
    ax = fig.add_subplot(gs[0])
    sc = fig.add_subplot(gs[1], sharex=ax)

    lo_t = alert.start.astimezone(tz)
    hi_t = (alert.end or idx[-1].to_pydatetime()).astimezone(tz)
    for a in (ax, sc):
        a.axvspan(float(date2num(lo_t)), float(date2num(hi_t)), color=RED, alpha=0.10, lw=0)
    ax.fill_between(idx, data.lower, data.upper, color=BAND, lw=0, step="mid")
    ax.plot(idx, data.expected, color=GREY, lw=1.2, ls="--")
    ax.plot(idx, data.value, color=BLUE, lw=1.8)
    hit = data.anomalous.astype(bool)
    ax.scatter(idx[hit], data.value[hit], s=26, color=RED, zorder=5, lw=0)

    sc.fill_between(idx, 0, data.score, color=GREY, alpha=0.35, lw=0, step="mid")
    sc.plot(idx, data.score, color=GREY, lw=1.0)
    if alert.threshold is not None:
        sc.axhline(alert.threshold, color=RED, lw=1.6, ls="--")
    sc.scatter(idx[hit], data.score[hit], s=14, color=RED, zorder=5, lw=0)
    top = float(np.nanmax(data.score)) if np.isfinite(data.score).any() else 1.0
    sc.set_ylim(0, max(top, alert.threshold or 0.0) * 1.15 or 1.0)

    ax.yaxis.set_major_formatter(FuncFormatter(_human))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    sc.yaxis.set_major_locator(MaxNLocator(2, integer=True))
    sc.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=tz))
    span_h = (idx[-1] - idx[0]).total_seconds() / 3600
    sc.xaxis.set_major_locator(HourLocator(interval=max(1, int(np.ceil(span_h / 4))), tz=tz))
    ax.tick_params(labelbottom=False)
    for a in (ax, sc):
        a.tick_params(labelsize=14, length=3)
        a.spines[["top", "right"]].set_visible(False)
        a.grid(axis="y", color="#e5e5e5", lw=0.8)
        a.set_axisbelow(True)
    sc.set_ylabel("score", fontsize=12, color=GREY)
    ax.set_xlim(idx[0], idx[-1])

    colour = "#2a7d2a" if alert.status == "resolved" else RED
    ratio = f"{alert.ratio:.1f}x expected" if alert.ratio is not None else alert.direction
    head = f"{alert.series}  {ratio}"
    if alert.status == "resolved":
        mins = int((alert.duration or timedelta()).total_seconds() // 60)
        head = f"RESOLVED  {alert.series}  after {mins} min"
    fig.text(0.015, 0.975, head, fontsize=19, weight="bold", color=colour, va="top")
    at = alert.detected_at.astimezone(tz)
    sub = f"{alert.severity} {alert.direction} · {at:%a %H:%M}"
    if alert.expected is not None:
        sub += f" · {alert.value:,.0f} vs {alert.expected:,.0f}{alert.unit}"
    fig.text(0.015, 0.885, sub, fontsize=14, color=GREY, va="top")

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def from_store(
    store: Store,
    alert: Alert,
    *,
    hours: float = 6.0,
    detector: str | None = None,
    k: float | None = None,
) -> PlotData | None:
    """The last ``hours`` up to the alert's end (or detection) from stored buckets and scores.

    The band is expected ± k·deviation with ``k`` the alert's threshold (σ units) by default.
    """
    if alert.series_id is None:
        return None
    end_t = (alert.end or alert.detected_at) + timedelta(minutes=30)
    start_t = end_t - timedelta(hours=hours)
    lo, hi = int(start_t.timestamp()), int(end_t.timestamp())
    values = store.read_buckets(alert.series_id, lo, hi)
    if values.empty:
        return None
    s = t.scores
    q = select(s.c.start, s.c.score, s.c.expected, s.c.deviation).where(
        (s.c.series_id == alert.series_id)
        & (s.c.detector == (detector or alert.detector))
        & (s.c.start >= lo)
        & (s.c.start < hi)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q.order_by(s.c.start)).all()
    frame = pd.DataFrame(rows, columns=["start", "score", "expected", "deviation"], dtype=float)
    frame.index = pd.to_datetime(frame["start"].astype("int64"), unit="s", utc=True)
    frame = frame.reindex(values.index)
    width = k if k is not None else (alert.threshold or 3.0)
    expected = frame["expected"].to_numpy(float)
    dev = frame["deviation"].fillna(0.0).to_numpy(float)
    score = frame["score"].fillna(0.0).to_numpy(float)
    thr = alert.threshold if alert.threshold is not None else width
    return PlotData(
        index=pd.DatetimeIndex(values.index),
        value=values.to_numpy(float),
        expected=expected,
        lower=expected - width * dev,
        upper=expected + width * dev,
        score=score,
        anomalous=score >= thr,
    )


def example(end: datetime | None = None) -> tuple[Alert, PlotData]:
    """A realistic example: a morning spike on a rush-hour curve (docs, benchmark, ``notify test``).

    Without ``end`` it is the Monday 2026-03-02 08:12 spike of the docs; with one, the same shape
    shifted so that the window ends at ``end``.
    """
    from datetime import UTC

    end = (
        (end or datetime(2026, 3, 2, 8, 40, tzinfo=UTC))
        .astimezone(UTC)
        .replace(second=0, microsecond=0)
    )
    idx = pd.date_range(end=end, periods=3 * 60, freq="1min")
    minutes = (idx - idx[-1]).total_seconds().to_numpy() / 60.0  # ..., -1, 0
    expected = 3000 + 9400 * np.exp(-(((minutes + 25) / 60.0) ** 2) / 1.2)
    dev = 150 + 0.06 * expected
    rng = np.random.default_rng(3)
    value = expected + rng.normal(0, 1, len(idx)) * dev * 0.6
    spike = (minutes >= -28) & (minutes < -9)
    value[spike] *= np.linspace(2.0, 3.1, int(spike.sum()))
    score = np.abs(value - expected) / dev
    k = 3.5
    alert = Alert(
        series="connected-drive",
        labels={"region": "eu-central", "service": "connected-drive"},
        status="firing",
        start=end - timedelta(minutes=28),
        detected_at=end - timedelta(minutes=25),
        value=38_440.0,
        expected=12_400.0,
        deviation=900.0,
        score=float(score.max()),
        severity="critical",
        threshold=k,
        explanation={"value": 0.86, "hour_of_week": 0.1, "delta": 0.04},
        series_id=1,
        dashboard="http://127.0.0.1:8080",
    )
    data = PlotData(idx, value, expected, expected - k * dev, expected + k * dev, score, score >= k)
    return alert, data
