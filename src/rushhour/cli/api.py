"""``rushhour serve``: the HTTP API and dashboard, with the live pipeline in the same event loop."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from rushhour.cli.app import ConfigOpt, JsonOpt, app, emit, load_cli_settings, out
from rushhour.settings import Settings
from rushhour.timeutil import parse_duration, zone


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[
        str | None, typer.Option(help="Bind address (default 127.0.0.1, api.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port (default 8080, api.port).")
    ] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="Stop by itself after this long, e.g. 10m.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the HTTP API and dashboard, and run the live pipeline behind them.

    POST /ingest pushes points into the pipeline (plus any [[source]] in the config) and answers once
    they are committed. Write endpoints need 'Authorization: Bearer <token>': the api.token setting
    (RUSHHOUR_API__TOKEN), or a token generated at first start, printed once, and kept hashed in the
    data directory. Open the printed address for the dashboard; /openapi.json describes the API.
    """
    settings = load_cli_settings(config, api__host=host, api__port=port)
    duration = parse_duration(for_).total_seconds() if for_ else None
    base = config.resolve().parent if config is not None else Path.cwd()
    serve_and_run(settings, duration, as_json, base)


def serve_and_run(
    settings: Settings, duration: float | None, as_json: bool, base: Path, *, drain: bool = False
) -> None:
    """The API plus the pipeline, until Ctrl-C, SIGTERM or ``duration``."""
    from rushhour.api.server import resolve_guard, serve_with_pipeline
    from rushhour.cli.pipeline import batch_reporter
    from rushhour.notify.console import ConsoleChannel
    from rushhour.notify.jsonl import JsonlChannel
    from rushhour.pipeline.clock import SystemClock
    from rushhour.store import open_store

    _, new_token = resolve_guard(settings)
    if new_token is not None:
        emit(
            as_json,
            "token",
            f"API token for write endpoints (shown once, kept hashed in {settings.data_dir}): "
            f"[bold]{new_token}[/]",
            token=new_token,
        )
    store = open_store(settings.store_url())
    channels: list[Any] = [
        ConsoleChannel(out, as_json=as_json, tz=zone(settings.timezone)),
        JsonlChannel(settings.data_dir / "alerts.jsonl"),
    ]
    loop = asyncio.new_event_loop()

    def hook(runtime: Any) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.stop)

    def ready(url: str) -> None:
        emit(
            as_json,
            "serving",
            f"rushhour API and dashboard on {url}/ (schema: {url}/openapi.json)",
            url=url,
        )

    try:
        stats = loop.run_until_complete(
            serve_with_pipeline(
                settings,
                store,
                SystemClock(),
                channels,
                base=base,
                duration=duration,
                drain=drain,
                on_outcome=batch_reporter(as_json),
                on_ready=ready,
                on_runtime=hook,
            )
        )
    finally:
        loop.close()
        store.close()
    emit(
        as_json,
        "stopped",
        f"stopped: {stats.batches} batches, {stats.points:,} points, {stats.closed:,} buckets "
        f"closed, {stats.anomalies} anomalies",
        batches=stats.batches,
        points=stats.points,
        closed=stats.closed,
        anomalies=stats.anomalies,
    )
    if stats.errors:
        raise typer.Exit(1)


def serve_demo(settings: Settings, as_json: bool, work: Any, stop: Any) -> Any:
    """The demo job (blocking, in a thread) with the API and dashboard served beside it."""
    from rushhour.api.server import resolve_guard, serve_beside
    from rushhour.store import open_store

    _, new_token = resolve_guard(settings)
    if new_token is not None:
        emit(
            as_json,
            "token",
            f"API token for write endpoints (shown once, kept hashed in {settings.data_dir}): "
            f"[bold]{new_token}[/]",
            token=new_token,
        )
    store = open_store(settings.store_url())  # the API's own connections; the job keeps its own
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)

    def ready(url: str) -> None:
        emit(as_json, "serving", f"dashboard on {url}/ (API schema: {url}/openapi.json)", url=url)

    try:
        return loop.run_until_complete(serve_beside(settings, store, work, on_ready=ready))
    finally:
        loop.close()
        store.close()
