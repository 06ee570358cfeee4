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


def batch_reporter(as_json: bool) -> Any:
    """The on_outcome callback that reports each batch on the console."""
    from rushhour.pipeline.processor import Batch, Outcome

    def report(batch: Batch, outcome: Outcome) -> None:
        if outcome.duplicate:
            emit(
                as_json,
                "duplicate",
                f"[dim]{batch.source} {batch.label}: already processed, skipped[/]",
                source=batch.source,
                label=batch.label,
            )
        elif outcome.points or outcome.rejected:
            rejected = sum(outcome.rejected.values())
            emit(
                as_json,
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

    return report


def run_pipeline(
    settings: Settings, duration: float | None, as_json: bool, base: Path, *, drain: bool = False
) -> None:
    """``rushhour run`` with configured sources (and the API too, with ``api.enabled``)."""
    if settings.api.enabled:
        from rushhour.cli.api import serve_and_run

        serve_and_run(settings, duration, as_json, base, drain=drain)
        return
    from rushhour.notify.console import ConsoleChannel
    from rushhour.notify.jsonl import JsonlChannel
    from rushhour.pipeline.clock import SystemClock
    from rushhour.pipeline.service import build_runtime
    from rushhour.store import open_store

    tz = zone(settings.timezone)
    store = open_store(settings.store_url())
    channels: list[Any] = [
        ConsoleChannel(out, as_json=as_json, tz=tz),
        JsonlChannel(settings.data_dir / "alerts.jsonl"),
    ]

    report = batch_reporter(as_json)

    runtime = build_runtime(settings, store, SystemClock(), channels, base=base, on_outcome=report)
    names = ", ".join(s.name for s in runtime.sources)
    emit(
        as_json,
        "starting",
        f"rushhour pipeline: {len(runtime.sources)} source(s) ({names}), store "
        f"{settings.masked()['store']['url']}",
    )
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runtime.stop)
    try:
        stats = loop.run_until_complete(runtime.run(duration=duration, until_idle=drain))
    finally:
        loop.close()
        store.close()
    emit(
        as_json,
        "stopped",
        f"stopped: {stats.batches} batches, {stats.points:,} points, {stats.closed:,} buckets closed, "
        f"{stats.late_records} late records, {stats.anomalies} anomalies, {stats.duplicates} duplicates skipped",
        batches=stats.batches,
        points=stats.points,
        closed=stats.closed,
        late_records=stats.late_records,
        anomalies=stats.anomalies,
        duplicates=stats.duplicates,
        rejected=stats.rejected,
    )
    if stats.errors:
        raise typer.Exit(1)
