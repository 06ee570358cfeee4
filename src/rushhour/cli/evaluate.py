"""The ``evaluate`` command: detection quality on a labelled corpus (NAB scores, events, runtime)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rushhour.cli.app import JsonOpt, app, out, progress_bar
from rushhour.errors import ConfigError


def detector_config(path: Path | None, settings: Any = None) -> Any:
    """The :class:`DetectorConfig` ``rushhour run`` would judge with, overridden by a TOML file's
    ``[detector]`` table.

    The base is the settings' default detector (``./rushhour.toml`` and ``RUSHHOUR_*`` variables, as
    every command reads them): its ``[detect]`` ``default_*`` keys, ``timezone`` and public holidays
    (``holidays_country``, US by default, the calendar ``rushhour generate`` also uses). A ``[detector]``
    key overrides any of them; ``holidays_country = ""`` judges without a calendar."""
    from rushhour.detect.default import DetectorConfig
    from rushhour.pipeline.detectors import default_config
    from rushhour.settings import load_settings

    base = default_config(settings if settings is not None else load_settings())
    if path is None:
        return base
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    table = data.get("detector", {})
    known = {f.name for f in fields(DetectorConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown [detector] setting(s) {unknown}; known: {sorted(known)}"
        )
    if "components" in table:
        table["components"] = tuple(table["components"])
    for key in ("holidays_country", "holidays_subdiv"):
        # TOML has no null: an empty string is no calendar
        if key in table and not table[key]:
            table[key] = None
    config = replace(base, **table)
    config.validate()
    return config


@app.command()
def evaluate(
    data_dir: Annotated[Path, typer.Argument(help="Corpus: <category>/<name>.csv files.")],
    labels: Annotated[Path, typer.Option(help="Windows JSON in NAB's combined_windows layout.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write result CSVs and summary.json.")
    ] = Path("results"),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file whose \\[detector] table sets the default detector's parameters.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the default detector causally over each labelled series and score it.

    Reports NAB scores (optimized threshold, and alerts as shipped) and event metrics. The detector
    judges as ``rushhour run`` would: in the settings' timezone, with their public holidays (US by
    default); the ``[detector]`` table of --config overrides any parameter.

    Writes OUT/<category>/<name>.csv (timestamp,value,anomaly_score,alert,label) and summary.json.
    """
    from rushhour.detect.default import DefaultDetector
    from rushhour.evaluate.runner import evaluate_corpus, load_labels, write_results

    cfg = detector_config(config)
    windows = load_labels(labels)
    with progress_bar(as_json) as progress:
        task = progress.add_task("evaluating", total=None) if progress else None

        def advance(done: int, total: int, name: str) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total, description=name)

        result = evaluate_corpus(data_dir, windows, lambda: DefaultDetector(cfg), on_file=advance)
    write_results(result, out_dir)
    summary = result.to_json() | {"config": vars(cfg) | {"components": list(cfg.components)}}
    if as_json:
        out.out(json.dumps(summary), highlight=False)
        return
    table = Table(title="NAB scores (null 0, perfect 100)")
    table.add_column("profile")
    table.add_column("optimized threshold", justify="right")
    table.add_column("as shipped (alerts)", justify="right")
    for name, s in result.optimized.items():
        table.add_row(name, f"{s.normalized:.2f}", f"{result.shipped[name].normalized:.2f}")
    out.print(table)
    ev = summary["events"]
    out.print(
        f"events: precision {ev['precision']:.3f}, recall {ev['recall']:.3f}, F1 {ev['f1']:.3f}, "
        f"delay mean {ev['mean_delay']} / median {ev['median_delay']} buckets "
        f"({ev['tp']} caught, {ev['fn']} missed, {ev['fp']} false alerts)"
    )
    per = Table(title="per file (raw NAB standard score, event counts)")
    for col in ("file", "windows", "optimized", "shipped", "tp", "fn", "fp", "median delay"):
        per.add_column(col)
    for row in summary["per_file"]:
        per.add_row(
            row["file"],
            str(row["windows"]),
            f"{row['nab_standard']:.3f}",
            f"{row['shipped_standard']:.3f}",
            str(row["tp"]),
            str(row["fn"]),
            str(row["fp"]),
            str(row["median_delay"]),
        )
    out.print(per)
    out.print(
        f"{summary['files']} files, {summary['windows']} windows in {summary['seconds']:.1f}s; "
        f"results in [bold]{out_dir}[/]"
    )
    if result.missing:
        out.print(
            f"[yellow]{len(result.missing)} labelled file(s) not in {data_dir}, not scored:[/] "
            + ", ".join(result.missing[:5])
            + (" ..." if len(result.missing) > 5 else "")
        )
