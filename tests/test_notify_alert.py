"""The alert model, its sentence and link, the plot, and the console and JSON-lines channels."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from rich.console import Console

from rushhour.detect.base import Verdict
from rushhour.notify.alert import Alert, dashboard_link, from_event, severity_rank
from rushhour.notify.console import ConsoleChannel
from rushhour.notify.jsonl import JsonlChannel
from rushhour.notify.notifier import Notifier
from rushhour.notify.plot import example, from_store, render
from rushhour.notify.registry import Delivery, ListSink, channel_types
from rushhour.records import AnomalyEvent
from rushhour.store import Store

T = datetime(2026, 3, 2, 8, 12, tzinfo=UTC)


def _alert(**kw: object) -> Alert:
    base = dict(
        series="connected-drive",
        labels={"region": "eu"},
        status="firing",
        start=T,
        detected_at=T + timedelta(minutes=3),
        value=38_440.0,
        expected=12_400.0,
        deviation=900.0,
        score=28.9,
        severity="critical",
    )
    return Alert(**{**base, **kw})  # type: ignore[arg-type]


def test_sentence_says_ratio_expected_when_band_start_and_sigma() -> None:
    s = _alert(timezone="Europe/Berlin", explanation={"status_5xx": 0.7, "value": 0.3}).sentence()
    assert s.startswith(
        "Requests to connected-drive were 3.1x the expected 12,400/min for a Monday 09:15 (±900), "
        "starting 09:12"
    )
    assert "+210% (+28.9σ)" in s and "spike" in s and "critical" in s
    assert s.endswith("driven mostly by status_5xx.")


def test_drop_and_resolved_sentences() -> None:
    drop = _alert(value=3_100.0)
    assert drop.direction == "drop" and "0.2x the expected" in drop.sentence()
    assert "-75% (-10.3σ), drop" in drop.sentence()
    done = _alert(peak_value=41_000.0, buckets=19).resolved(T + timedelta(minutes=28))
    assert done.sentence() == (
        "Resolved: Requests to connected-drive are back in the expected band since 08:40 after a "
        "28 min spike starting 08:12 (19 anomalous buckets, peak 41,000/min, critical, "
        "peak score 28.90)."
    )
    assert done.fingerprint == _alert().fingerprint and done.id != _alert().id


def test_link_and_json_round_trip() -> None:
    a = _alert(series_id=7, dashboard="http://127.0.0.1:8080/")
    assert a.link() == dashboard_link(
        "http://127.0.0.1:8080", 7, T - timedelta(hours=6), T + timedelta(minutes=63)
    )
    assert a.link().startswith("http://127.0.0.1:8080/series/7?from=2026-03-02T02%3A12%3A00Z")
    assert Alert.from_json(json.loads(json.dumps(a.to_json()))) == a
    assert _alert().link() == ""
    summary = a.summary_json()
    assert (
        summary["ratio"] == 3.1 and summary["deviation_pct"] == 210.0 and summary["sigma"] == 28.93
    )


def test_from_pipeline_event() -> None:
    ev = AnomalyEvent(
        "api",
        {"r": "eu"},
        T,
        300.0,
        100.0,
        20.0,
        10.0,
        "spike",
        "warning",
        "mean_band",
        10.0,
        explanation={"value": 1.0, "note": "x"},
    )
    a = from_event(ev, detected_at=T, series_id=3, dashboard="http://h")
    assert (a.sigma, a.explanation, a.link().startswith("http://h/series/3")) == (
        10.0,
        {"value": 1.0},
        True,
    )


def test_severity_rank_rejects_unknown() -> None:
    with pytest.raises(
        ValueError, match="severity must be one of info, warning, critical, got 'high'"
    ):
        severity_rank("high")


def test_plot_is_a_thumbnail_friendly_png() -> None:
    alert, data = example()
    png = render(alert, data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(io.BytesIO(png))
    assert img.shape[1] == 720 and 380 <= img.shape[0] <= 460  # halves to ~360 px wide
    red = (img[..., 0] > 0.75) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)
    assert red.sum() > 500, "anomaly points and headline are drawn in red"
    plot = red[int(0.2 * img.shape[0]) :]  # below the headline
    w = img.shape[1]
    # the middle holds only the dashed threshold line; the points sit at the spike, on the right
    assert plot[:, int(0.8 * w) :].sum() > 2 * plot[:, int(0.15 * w) : int(0.6 * w)].sum()


def test_the_reused_figure_carries_nothing_from_one_alert_to_the_next() -> None:
    """Each render swaps its data into one figure: the same input gives the same pixels whatever
    was drawn before, a resolved alert shows no red points, and threads can render at once."""
    from concurrent.futures import ThreadPoolExecutor

    alert, data = example()
    first = render(alert, data)
    calm = replace(data, value=data.expected.copy(), anomalous=np.zeros_like(data.anomalous))
    quiet = render(alert.resolved(alert.detected_at + timedelta(minutes=20)), calm)
    with_gaps = replace(data, expected=np.where(np.arange(len(data.index)) % 50 < 5, np.nan, 1.0))
    render(alert, with_gaps)  # NaN runs split the band polygons
    assert render(alert, data) == first != quiet
    assert _red_pixels(quiet) == 0 < _red_pixels(first), "no red points left over"
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: render(alert, data if i % 2 else calm), range(8)))
    assert all(png == first for png in outs[1::2])


def _red_pixels(png: bytes) -> int:
    """Red pixels in the upper panel (below the headline, above the score's threshold line)."""
    img = imread(io.BytesIO(png))
    body = img[int(0.22 * img.shape[0]) : int(0.70 * img.shape[0])]
    return int(((body[..., 0] > 0.75) & (body[..., 1] < 0.3) & (body[..., 2] < 0.3)).sum())


def test_plot_from_stored_buckets_and_scores(store: Store) -> None:
    alert, data = example()
    with store.begin() as tx:
        ref = store.ensure_series(tx, "connected-drive", {}, 60)
        starts = (data.index.asi8 // 1_000_000_000).tolist()
        store.write_buckets(tx, ref.id, starts, data.value.tolist())
        store.write_scores(
            tx,
            [
                {
                    "series_id": ref.id,
                    "start": s,
                    "detector": "mean_band",
                    "score": float(sc),
                    "expected": float(e),
                    "deviation": float((u - e) / 3.5),
                    "explanation": None,
                }
                for s, sc, e, u in zip(starts, data.score, data.expected, data.upper, strict=True)
            ],
        )
    got = from_store(store, replace(alert, series_id=ref.id), hours=2)
    # 2 h up to 30 min after detection (08:45): 06:45 .. 08:40, where the stored data ends
    assert got is not None and len(got.index) == 116 and got.index[0].hour == 6
    np.testing.assert_allclose(got.upper, data.upper[-116:], rtol=1e-9)
    assert got.anomalous.sum() > 0 and render(alert, got)[:4] == b"\x89PNG"
    # the notifier renders from the store by default
    n = Notifier(store, [ListSink()])
    assert n._plot_from_store(replace(alert, series_id=ref.id)) is not None


def test_console_and_jsonl_take_the_alert_model(tmp_path: Path) -> None:
    alert, _ = example()
    buf = io.StringIO()
    ConsoleChannel(Console(file=buf, width=300)).deliver(Delivery("k:console", [alert]))
    assert buf.getvalue().startswith("CRITICAL Requests to connected-drive were 3.1x")
    JsonlChannel(tmp_path / "a.jsonl").deliver(Delivery("k:jsonl", [alert, alert.resolved(T)]))
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines] == ["firing", "resolved"]
    assert lines[0]["dedupe_key"] == "k:jsonl" and lines[0]["sentence"] == alert.sentence()


def test_every_builtin_registers_through_the_registry() -> None:
    assert {
        "slack",
        "slack_webhook",
        "webhook",
        "alertmanager",
        "email",
        "console",
        "jsonl",
    } <= set(channel_types())


def test_notifier_with_verdicts_from_the_detector_contract() -> None:
    v = Verdict(score=5.0, anomalous=True, expected=100.0, deviation=10.0, direction="spike")
    assert v.sigma_at(150.0) == 5.0
