"""``rushhour serve``: the HTTP API and dashboard, with the live pipeline in the same event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rushhour.cli.app import ConfigOpt, JsonOpt, app, emit, load_cli_settings
from rushhour.settings import Settings
from rushhour.timeutil import parse_duration


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
    Unlike `rushhour run`, serve never starts the demo.
    """
    from rushhour.cli.pipeline import run_pipeline

    settings = load_cli_settings(config, api__host=host, api__port=port, api__enabled=True)
    duration = parse_duration(for_).total_seconds() if for_ else None
    base = config.resolve().parent if config is not None else Path.cwd()
    run_pipeline(settings, duration, as_json, base)


def announce_token(settings: Settings, as_json: bool) -> None:
    """Generate the write token at first start and show it, this once."""
    from rushhour.api.server import resolve_guard

    _, new_token = resolve_guard(settings)
    if new_token is not None:
        emit(
            as_json,
            "token",
            f"API token for write endpoints (shown once, kept hashed in {settings.data_dir}): "
            f"[bold]{new_token}[/]",
            token=new_token,
        )


async def serve_runtime(
    settings: Settings,
    store: Any,
    runtime: Any,
    queue: Any,
    duration: float | None,
    drain: bool,
    as_json: bool,
) -> Any:
    """The pipeline's run, with the API served beside it in the same loop."""
    from rushhour.api.server import serve_with_runtime

    def ready(url: str) -> None:
        emit(
            as_json,
            "serving",
            f"rushhour API and dashboard on {url}/ (schema: {url}/openapi.json)",
            url=url,
        )

    return await serve_with_runtime(
        settings, store, runtime, queue, duration=duration, drain=drain, on_ready=ready
    )
