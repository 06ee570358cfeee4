"""The alert plot: a PNG (matplotlib Agg) readable at Slack thumbnail size (~360 px wide).

The upper panel shows the last hours of the series, the expected value and its band, the episode
shaded and the anomalous buckets as red dots; the lower panel shows the anomaly score against its
threshold. Large fonts, few ticks, no legend box: at 360 px only shapes and a headline survive.

Rendering is built for a steady, short time per alert rather than for generality: the
process builds one figure (fixed layout rectangles, every artist created once) and each render only swaps
data into it: the band and the score area are one polygon collection each, updated in place; the
anomalous points are marker-only lines; x is plain epoch seconds with tick positions and labels
computed here (no date converters, no locators on x); the PNG is encoded straight from the Agg
buffer at a low zlib level. :func:`warm_up` pays the first, cold render (font cache, figure build)
at worker start. The object API only (no pyplot state); one figure per process behind a lock:
safe in threads.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory
from PIL import Image
from sqlalchemy import select

from rushhour.notify.alert import Alert
from rushhour.store import schema as t
from rushhour.store.db import Store
from rushhour.timeutil import zone

WIDTH_IN, HEIGHT_IN, DPI = 7.2, 4.2, 100  # 720 x 420 px: halves cleanly to a 360 px thumbnail
RED, BLUE, BAND, GREY = "#d62728", "#1f4e99", "#c9d6ea", "#555555"
GREEN = "#2a7d2a"
# fixed layout (figure fractions): no tight/constrained layout pass on any render
TOP_RECT = (0.105, 0.28, 0.87, 0.52)  # left, bottom, width, height
SCORE_RECT = (0.105, 0.09, 0.87, 0.1625)
PNG_LEVEL = 3  # zlib level: ~8 ms to encode against ~12 ms at the default 6; the RGB PNG is 39 kB


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


def step_band(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> list[np.ndarray]:
    """Polygons (one per run of finite values) of a band drawn as steps centred on each ``x``.

    What ``fill_between(x, lower, upper, step="mid")`` draws, as vertices for a PolyCollection:

    >>> [p.tolist() for p in step_band(np.array([0.0, 2.0]), np.array([0.0, 1.0]), np.array([5.0, 6.0]))]
    [[[0.0, 5.0], [1.0, 5.0], [1.0, 6.0], [2.0, 6.0], [2.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]]
    >>> len(step_band(np.arange(5.0), np.array([0, 0, np.nan, 0, 0.0]), np.ones(5)))
    2
    """
    ok = np.isfinite(lower) & np.isfinite(upper)
    polys = []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.astype(np.int8), [0]))))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        xs, lo, hi = x[a:b], lower[a:b], upper[a:b]
        mid = (xs[1:] + xs[:-1]) / 2
        ex = np.repeat(np.concatenate(([xs[0]], mid, [xs[-1]])), 2)[1:-1]
        top = np.column_stack((ex, np.repeat(hi, 2)))
        bottom = np.column_stack((ex, np.repeat(lo, 2)))[::-1]
        polys.append(np.concatenate((top, bottom)))
    return polys


def hour_ticks(index: pd.DatetimeIndex, tz: Any) -> tuple[np.ndarray, list[str]]:
    """About four local whole-hour ticks across ``index``: epoch seconds and ``HH:MM`` labels.

    >>> i = pd.date_range("2026-03-02 05:40", "2026-03-02 08:40", freq="1min", tz="UTC")
    >>> hour_ticks(i, zone("Europe/Berlin"))[1]
    ['07:00', '08:00', '09:00']
    """
    local = index.tz_convert(tz)
    span_h = (local[-1] - local[0]).total_seconds() / 3600
    every = max(1, int(np.ceil(span_h / 4)))
    hours = pd.date_range(local[0].ceil("h"), local[-1], freq="h")
    hours = hours[hours.hour % every == 0]
    return hours.asi8 / 1e9, [f"{h:%H:%M}" for h in hours]


class _Canvas:
    """One figure with every artist of the alert plot, built once; :meth:`draw` swaps the data in."""

    def __init__(self) -> None:
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        self.canvas = FigureCanvasAgg(fig)
        self.fig = fig
        ax, sc = fig.add_axes(TOP_RECT), fig.add_axes(SCORE_RECT)
        self.ax, self.sc = ax, sc
        self.spans = []
        for a in (ax, sc):
            span = Rectangle(
                (0, 0),
                0,
                1,
                transform=blended_transform_factory(a.transData, a.transAxes),
                color=RED,
                alpha=0.10,
                lw=0,
            )
            a.add_patch(span)
            self.spans.append(span)
        self.band = PolyCollection([], facecolors=BAND, linewidths=0)
        ax.add_collection(self.band, autolim=False)
        (self.expected,) = ax.plot([], [], color=GREY, lw=1.2, ls="--")
        (self.value,) = ax.plot([], [], color=BLUE, lw=1.8)
        (self.hits,) = ax.plot([], [], ls="", marker="o", ms=5.8, color=RED, mew=0, zorder=5)
        self.score_area = PolyCollection([], facecolors=GREY, alpha=0.35, linewidths=0)
        sc.add_collection(self.score_area, autolim=False)
        (self.score,) = sc.plot([], [], color=GREY, lw=1.0)
        self.threshold = sc.axhline(0.0, color=RED, lw=1.6, ls="--")
        (self.score_hits,) = sc.plot([], [], ls="", marker="o", ms=4.2, color=RED, mew=0, zorder=5)

        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        ax.yaxis.set_major_locator(MaxNLocator(3))
        sc.yaxis.set_major_locator(MaxNLocator(2, integer=True))
        ax.tick_params(labelbottom=False)
        for a in (ax, sc):
            a.tick_params(labelsize=14, length=3)
            a.spines[["top", "right"]].set_visible(False)
            a.grid(axis="y", color="#e5e5e5", lw=0.8)
            a.set_axisbelow(True)
            a.set_autoscale_on(False)
        sc.set_ylabel("score", fontsize=12, color=GREY)
        self.head = fig.text(0.015, 0.975, "", fontsize=19, weight="bold", va="top")
        self.sub = fig.text(0.015, 0.885, "", fontsize=14, color=GREY, va="top")

    def draw(self, alert: Alert, data: PlotData) -> bytes:
        tz = zone(alert.timezone)
        x = data.index.asi8 / 1e9
        lo_t = alert.start.timestamp()
        hi_t = alert.end.timestamp() if alert.end is not None else float(x[-1])
        for span in self.spans:
            span.set_x(lo_t)
            span.set_width(hi_t - lo_t)
        self.band.set_verts(step_band(x, data.lower, data.upper))
        self.expected.set_data(x, data.expected)
        self.value.set_data(x, data.value)
        hit = data.anomalous.astype(bool)
        self.hits.set_data(x[hit], data.value[hit])
        self.score_area.set_verts(step_band(x, np.zeros_like(data.score), data.score))
        self.score.set_data(x, data.score)
        self.threshold.set_visible(alert.threshold is not None)
        self.threshold.set_ydata([alert.threshold or 0.0] * 2)
        self.score_hits.set_data(x[hit], data.score[hit])

        self.ax.set_ylim(*_limits(data.value, data.lower, data.upper, data.expected))
        top = float(np.nanmax(data.score)) if np.isfinite(data.score).any() else 1.0
        self.sc.set_ylim(0, max(top, alert.threshold or 0.0) * 1.15 or 1.0)
        ticks, labels = hour_ticks(data.index, tz)
        for a in (self.ax, self.sc):
            a.set_xlim(float(x[0]), float(x[-1]))
            a.set_xticks(ticks, labels if a is self.sc else [])

        self.head.set_text(_headline(alert))
        self.head.set_color(GREEN if alert.status == "resolved" else RED)
        self.sub.set_text(_subtitle(alert, tz))
        self.canvas.draw()
        w, h = self.canvas.get_width_height()
        img = Image.frombuffer("RGBA", (w, h), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="png", compress_level=PNG_LEVEL)
        return buf.getvalue()


def _limits(*arrays: np.ndarray) -> tuple[float, float]:
    """The y range of the upper panel: every finite value, 5% margins (matplotlib's default)."""
    finite = [a[np.isfinite(a)] for a in arrays]
    values = np.concatenate(finite) if finite else np.array([])
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or max(abs(hi) * 0.05, 1.0)
    return lo - pad, hi + pad


def _headline(alert: Alert) -> str:
    if alert.status == "resolved":
        mins = int((alert.duration or timedelta()).total_seconds() // 60)
        return f"RESOLVED  {alert.series}  after {mins} min"
    ratio = f"{alert.ratio:.1f}x expected" if alert.ratio is not None else alert.direction
    return f"{alert.series}  {ratio}"


def _subtitle(alert: Alert, tz: Any) -> str:
    at = alert.detected_at.astimezone(tz)
    sub = f"{alert.severity} {alert.direction} · {at:%a %H:%M}"
    if alert.expected is not None:
        sub += f" · {alert.value:,.0f} vs {alert.expected:,.0f}{alert.unit}"
    return sub


_LOCK = threading.Lock()
_CANVAS: list[_Canvas] = []  # the process's figure, built on first use


def render(alert: Alert, data: PlotData) -> bytes:
    """The PNG bytes of the alert plot.

    One figure per process, drawn by one thread at a time (a render takes tens of milliseconds;
    the pipeline renders from whichever worker thread runs the batch, so a per-thread figure would
    be built, cold, once per thread).
    """
    with _LOCK:
        if not _CANVAS:
            _CANVAS.append(_Canvas())
        return _CANVAS[0].draw(alert, data)


def warm_up() -> float:
    """Render the example once (fonts, figure, first draw); returns the seconds it took."""
    import time

    t0 = time.perf_counter()
    render(*example())
    return time.perf_counter() - t0


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
