"""Commands of the live pipeline: ``series`` and ``train`` (``run`` dispatches here with sources)."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from rushhour.cli.app import ConfigOpt, JsonOpt, app, emit, load_cli_settings, out, progress_bar
from rushhour.settings import Settings
from rushhour.timeutil import from_epoch, zone


@app.command()
def series(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List every series with its labels, first and last bucket, and the total of its values."""
    from rushhour.store import open_store

    settings = load_cli_settings(config)
    store = open_store(settings.store_url())
    rows = store.series_summary()
    store.close()
    data = [
        {
            "id": r["id"],
            "key": r["key"],
            "name": r["name"],
            "labels": r["labels"],
            "bucket_seconds": r["bucket_seconds"],
            "buckets": r["buckets"],
            "total": r["total"],
            "first": None if r["first"] is None else from_epoch(r["first"]).isoformat(),
            "last": None if r["last"] is None else from_epoch(r["last"]).isoformat(),
        }
        for r in rows
    ]
    if as_json:
        out.print_json(json.dumps(data))
        return
    if not data:
        out.print("no series yet: run `rushhour run` (the demo) or configure a [[source]]")
        return
    tz = zone(settings.timezone)
    table = Table(show_header=True, header_style="bold")
    for col in ("series", "labels", "first", "last", "buckets", "total"):
        table.add_column(col, justify="right" if col in ("buckets", "total") else "left")
    for r in rows:
        fmt = "%Y-%m-%d %H:%M"
        first = "" if r["first"] is None else from_epoch(r["first"]).astimezone(tz).strftime(fmt)
        last = "" if r["last"] is None else from_epoch(r["last"]).astimezone(tz).strftime(fmt)
        labels = ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))
        table.add_row(r["name"], labels, first, last, f"{r['buckets']:,}", f"{r['total']:,.0f}")
    out.print(table)


@app.command()
def train(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Refit every series' model from stored history now (what the weekly retraining does).

    Anomalies already stored and public holidays are left out; each model's cut-off (mean + 3·std of
    its training scores) is recorded in the cut-off history. A running pipeline picks the new models up
    at its next retraining or restart.
    """
    from rushhour.pipeline.retrain import train as run_training
    from rushhour.store import open_store

    settings = load_cli_settings(config)
    store = open_store(settings.store_url())
    with progress_bar(as_json) as bar:
        task = bar.add_task("training", total=None) if bar else None

        def advance(done: int, total: int, what: str) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=total, description=what)

        report = run_training(settings, store, datetime.now(UTC), advance)
    store.close()
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    out.print(
        f"trained {len(report.trained)} series"
        + (" and the fleet baseline" if report.fleet else "")
    )
    for key, cutoff in report.cutoffs.items():
        out.print(f"  {key}: cut-off {cutoff:.2f}")
    for key, why in report.skipped.items():
        out.print(f"  [dim]skipped {key}: {why}[/]")


def run_pipeline(
    settings: Settings, duration: float | None, as_json: bool, base: Path, *, drain: bool = False
) -> None:
    """``rushhour run``: the live pipeline over the configured sources (the demo is one of them)."""
    from rushhour import __version__
    from rushhour.pipeline.clock import SystemClock
    from rushhour.pipeline.demo import prepare_demo
    from rushhour.pipeline.service import build_runtime
    from rushhour.store import open_store

    tz = zone(settings.timezone)
    clock = SystemClock()
    store = open_store(settings.store_url())
    notifier = _notifier(settings, store, as_json)
    demo = any(spec.type == "demo" for spec in settings.source)
    emit(
        as_json,
        "starting",
        f"rushhour {__version__}: "
        + (
            "demo on synthetic traffic"
            if demo
            else f"live pipeline with {len(settings.source)} source(s)"
        )
        + f", store {settings.masked()['store']['url']}",
    )
    if demo:
        _prepare_demo(settings, store, clock, as_json, tz, prepare_demo)
    status = _Status(as_json, tz)
    # with api.enabled the HTTP API runs in this loop; POST /ingest pushes into this queue source
    push = _api_source(settings, as_json)
    runtime = build_runtime(
        settings,
        store,
        clock,
        (),
        base=base,
        on_outcome=status.report,
        notifier=notifier,
        extra_sources=push,
    )
    loop = asyncio.new_event_loop()
    interrupted: list[int] = []

    def on_signal(sig: int) -> None:
        interrupted.append(sig)
        runtime.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if push:
            from rushhour.cli.api import serve_runtime

            work = serve_runtime(settings, store, runtime, push[0], duration, drain, as_json)
        else:
            work = runtime.run(duration=duration, until_idle=drain)
        stats = loop.run_until_complete(work)
    finally:
        loop.close()
        position = store.checkpoint("source:demo") if demo else None
        stored = store.count_anomalies()
        store.close()
    where = ""
    if position is not None:
        where = f" at simulated {from_epoch(position['next']).astimezone(tz):%a %Y-%m-%d %H:%M}"
    emit(
        as_json,
        "stopped",
        f"{'interrupted' if interrupted else 'stopped'}{where}: {stats.points:,} points, {stats.closed:,} buckets closed, {stats.late_records} late, "
        f"{stats.flagged} buckets flagged by the deciding detector, {stats.anomalies} new anomaly records "
        f"from all detectors ({stored} stored). Run `rushhour run` again to continue.",
        sim_time=None if position is None else from_epoch(position["next"]).isoformat(),
        batches=stats.batches,
        points=stats.points,
        closed=stats.closed,
        late_records=stats.late_records,
        flagged=stats.flagged,
        anomalies=stats.anomalies,
        anomalies_stored=stored,
        duplicates=stats.duplicates,
        recovered=stats.recovered,
        rejected=stats.rejected,
    )
    if stats.errors:
        raise typer.Exit(1)


def _notifier(settings: Settings, store: Any, as_json: bool) -> Any:
    """The configured ``[[notify]]`` channels, or the console (rich, or JSON lines) and alerts.jsonl."""
    from rushhour.notify.console import ConsoleChannel
    from rushhour.notify.jsonl import JsonlChannel
    from rushhour.notify.notifier import Notifier

    notifier = Notifier.from_settings(settings, store)
    if not settings.notify:
        notifier.channels = [
            ConsoleChannel(out, as_json=as_json),
            JsonlChannel(settings.data_dir / "alerts.jsonl"),
        ]
    return notifier


def _api_source(settings: Settings, as_json: bool) -> list[Any]:
    if not settings.api.enabled:
        return []
    from rushhour.cli.api import announce_token
    from rushhour.pipeline.sources.queue import QueueSource

    announce_token(settings, as_json)
    return [QueueSource()]


def _prepare_demo(
    settings: Settings, store: Any, clock: Any, as_json: bool, tz: Any, prepare: Any
) -> None:
    with progress_bar(as_json) as bar:
        task = bar.add_task("preparing", total=None) if bar else None

        def advance(done: int, total: int, what: str) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=total, description=what)

        position = prepare(settings, store, clock, advance)
    fresh = position["first_start"]
    sim = from_epoch(position["next"])
    emit(
        as_json,
        "ready",
        ("generated and trained" if fresh else "resumed")
        + f" {len(store.all_series())} demo series: live from {sim.astimezone(tz):%a %Y-%m-%d %H:%M} "
        f"({settings.timezone}), {settings.demo.speed:g} simulated minutes per second",
        sim_time=sim.isoformat(),
        first_start=bool(fresh),
    )


class _Status:
    """Per-batch lines for real sources; one line per simulated hour for the demo."""

    def __init__(self, as_json: bool, tz: Any) -> None:
        self.as_json = as_json
        self.tz = tz
        self.hour: str | None = None
        self.points = 0
        self.anomalies = 0
        self.flagged = 0

    def report(self, batch: Any, outcome: Any) -> None:
        self.points += outcome.points
        self.anomalies += outcome.anomalies
        self.flagged += outcome.flagged
        if batch.source == "demo":
            when = datetime.fromisoformat(batch.label).astimezone(self.tz)
            hour = when.strftime("%a %H:00")
            if hour != self.hour:
                self.hour = hour
                emit(
                    self.as_json,
                    "status",
                    f"[dim]{hour} · {self.points:,} points · {self.flagged} flagged buckets "
                    f"({self.anomalies} anomaly records from all detectors) this run[/]",
                    sim_time=when.isoformat(),
                    points=self.points,
                    flagged=self.flagged,
                    anomalies=self.anomalies,
                )
            return
        if outcome.duplicate:
            emit(
                self.as_json,
                "duplicate",
                f"[dim]{batch.source} {batch.label}: already processed, skipped[/]",
                source=batch.source,
                label=batch.label,
            )
        elif outcome.points or outcome.rejected:
            rejected = sum(outcome.rejected.values())
            emit(
                self.as_json,
                "batch",
                f"[dim]{batch.source} {batch.label}: {outcome.points:,} points, {outcome.closed:,} buckets closed"
                + (f", {rejected} rejected" if rejected else "")
                + "[/]",
                source=batch.source,
                label=batch.label,
                points=outcome.points,
                closed=outcome.closed,
                rejected=outcome.rejected,
                examples=batch.points.examples,
            )
