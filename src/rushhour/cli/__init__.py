"""The ``rushhour`` command line: one command per verb, errors translated here and only here.

Each area registers its commands on the shared typer app in its own module; importing the module
registers them.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import click
import typer
from typer.exceptions import TyperException

from rushhour.cli import api as _api  # noqa: F401  (registers serve)
from rushhour.cli import demo as _demo  # noqa: F401  (registers config, generate, run)
from rushhour.cli import evaluate as _evaluate  # noqa: F401  (registers evaluate)
from rushhour.cli import forecast as _forecast  # noqa: F401  (backtest, forecast, plan, deepar-train, deepar-deploy)
from rushhour.cli import ingest as _ingest  # noqa: F401  (registers ingest)
from rushhour.cli import notify as _notify  # noqa: F401  (registers silence, notify)
from rushhour.cli import pipeline as _pipeline  # noqa: F401  (registers series, train)
from rushhour.cli import rcf as _rcf  # noqa: F401  (registers detect)
from rushhour.cli.app import app, err
from rushhour.errors import RushhourError

__all__ = ["app", "main"]


# -- entry point --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; translate expected errors to one line with a next step."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("RUSHHOUR_DEBUG") == "1"
    as_json = "--json" in args
    try:
        result = app(args=args, prog_name="rushhour", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except RushhourError as exc:
        if debug:
            traceback.print_exc()
        _report(exc.message, exc.hint, type(exc).__name__, as_json)
        return exc.exit_code
    except (typer.Exit, click.exceptions.Exit) as exc:
        return int(exc.exit_code)
    except (TyperException, click.ClickException) as exc:
        # typer vendors click: its usage errors are TyperExceptions that know how to show themselves
        if as_json:
            _report(exc.format_message(), "run the command with --help", "UsageError", True)
        elif hasattr(exc, "show"):
            exc.show()
        else:
            err.print(f"error: {exc.format_message()}")
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort, click.exceptions.Abort):
        err.print("interrupted")
        return 130


def _report(message: str, hint: str, kind: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": {"type": kind, "message": message, "hint": hint}}))
    else:
        tail = f" Next: {hint}." if hint else ""
        err.print(f"[bold red]error:[/] {message}.{tail}", highlight=False, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
