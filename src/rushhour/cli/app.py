"""The typer app, shared options and output helpers that every command module uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rushhour import __version__
from rushhour.errors import UsageError
from rushhour.settings import Settings, load_settings
from rushhour.timeutil import utc

app = typer.Typer(
    name="rushhour",
    help="Learn the rhythm of service traffic, flag deviations live, alert people, forecast demand.\n\n"
    "Run `rushhour run` for the demo: it generates history, learns it, and watches live traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default: ./rushhour.toml if present)."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")
]


def _version(value: bool) -> None:
    if value:
        out.print(f"rushhour {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Global options."""


def load_cli_settings(config: Path | None, **overrides: Any) -> Settings:
    flat = {k: v for k, v in overrides.items() if v is not None}
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        head, _, tail = key.partition("__")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[head] = value
    return load_settings(config, nested)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in data.items():
        if isinstance(v, dict):
            rows.extend(flatten(v, f"{prefix}{k}."))
        else:
            rows.append((f"{prefix}{k}", v))
    return rows


def parse_day(text: str) -> datetime:
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise UsageError(f"cannot read date {text!r}", hint="write it as YYYY-MM-DD") from exc


def monday_weeks_ago(weeks: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday(), weeks=weeks)


def emit(as_json: bool, event: str, text: str, **fields: Any) -> None:
    if as_json:
        out.out(json.dumps({"event": event, "message": plain(text), **fields}), highlight=False)
    else:
        out.print(text, highlight=False)


def plain(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(text).plain


class NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(as_json: bool) -> Any:
    if as_json or not out.is_terminal:
        return NoProgress()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    )
