"""Commands of the foundation: ``config``, ``generate`` and ``run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rushhour.cli.app import (
    ConfigOpt,
    JsonOpt,
    app,
    flatten,
    load_cli_settings,
    monday_weeks_ago,
    out,
    parse_day,
)
from rushhour.timeutil import parse_duration


# -- config -------------------------------------------------------------------------------------
@app.command()
def config(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print the effective settings (defaults < rushhour.toml < RUSHHOUR_* < flags), secrets masked."""
    settings = load_cli_settings(config)
    data = settings.masked()
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(title="effective settings", show_header=True, header_style="bold")
    table.add_column("setting")
    table.add_column("value")
    for key, value in flatten(data):
        table.add_row(key, "" if value is None else str(value))
    out.print(table)


# -- generate -----------------------------------------------------------------------------------
@app.command()
def generate(
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the series.")
    ] = Path("traffic.csv"),
    weeks: Annotated[int, typer.Option(min=1, max=520, help="Weeks of traffic.")] = 4,
    start: Annotated[
        str | None,
        typer.Option(help="First day, YYYY-MM-DD (UTC). Default: the Monday `weeks` weeks ago."),
    ] = None,
    bucket: Annotated[str, typer.Option(help="Bucket width, e.g. 1m or 5m.")] = "1m",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same traffic.")] = 0,
    anomalies_per_day: Annotated[
        float, typer.Option(min=0, help="Injected anomalies per day on average.")
    ] = 2.0,
    base_rpm: Annotated[
        float, typer.Option(min=1, help="Night-time requests per minute.")
    ] = 1200.0,
    labels: Annotated[
        Path | None,
        typer.Option(help="Ground-truth windows JSON (default: OUT with .labels.json)."),
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="Local zone of the rhythm (IANA).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write weeks of synthetic request counts with rush hours, weekends, holidays and labelled anomalies."""
    from rushhour.series.generate import TrafficShape, generate_traffic, labels_json
    from rushhour.timeutil import bucket_seconds

    settings = load_cli_settings(config, timezone=timezone)
    width = bucket_seconds(bucket)
    first = parse_day(start) if start else monday_weeks_ago(weeks)
    traffic = generate_traffic(
        first,
        weeks=weeks,
        freq=f"{width}s",
        seed=seed,
        anomalies_per_day=anomalies_per_day,
        tz=settings.timezone,
        holidays_country=settings.holidays_country,
        holidays_subdiv=settings.holidays_subdiv,
        shape=TrafficShape(base_rpm=base_rpm),
    )
    frame = traffic.frame.reset_index()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_path, index=False)
    labels_path = labels or out_path.with_suffix(".labels.json")
    labels_path.write_text(
        json.dumps(labels_json(traffic.anomalies, out_path.name), indent=2) + "\n"
    )
    summary = {
        "out": str(out_path),
        "labels": str(labels_path),
        "buckets": len(frame),
        "start": first.isoformat(),
        "bucket_seconds": width,
        "total_requests": int(traffic.frame["value"].sum()),
        "anomalies": [w.to_json() for w in traffic.anomalies],
    }
    if as_json:
        out.print_json(json.dumps(summary))
        return
    kinds: dict[str, int] = {}
    for w in traffic.anomalies:
        kinds[w.kind] = kinds.get(w.kind, 0) + 1
    out.print(
        f"wrote {len(frame):,} buckets ({weeks} weeks from {first:%Y-%m-%d}) to [bold]{out_path}[/], "
        f"{summary['total_requests']:,} requests"
    )
    out.print(
        f"labelled {len(traffic.anomalies)} anomalies in [bold]{labels_path}[/]: "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    )


# -- run ----------------------------------------------------------------------------------------
@app.command()
def run(
    config: ConfigOpt = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="Stop by itself after this long, e.g. 90s or 10m.")
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(min=0.001, help="Simulated minutes per wall-clock second (demo)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where state is kept (default .rushhour).")
    ] = None,
    drain: Annotated[
        bool, typer.Option("--drain", help="With sources: stop once every source is idle.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the main job: the live pipeline over the sources in the config, or without any, the demo.

    The demo generates weeks of history for a few services into SQLite and fits their Mean
    Predictors on first start; then it streams live synthetic traffic bucket by bucket through the
    pipeline and reports each anomaly on the console, in the store and in .rushhour/alerts.jsonl.
    Ctrl-C stops cleanly; a restart continues where it stopped.
    """
    from rushhour.cli.pipeline import run_pipeline
    from rushhour.pipeline.spec import DemoSpec

    duration = parse_duration(for_).total_seconds() if for_ else None
    settings = load_cli_settings(config, demo__speed=speed, data_dir=data_dir)
    if not settings.source:
        settings = settings.model_copy(update={"source": [DemoSpec(type="demo")]})
    base = config.resolve().parent if config is not None else Path.cwd()
    run_pipeline(settings, duration, as_json, base, drain=drain)
