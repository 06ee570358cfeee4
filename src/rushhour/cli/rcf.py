"""``rushhour detect --algo rcf``: score a CSV with the streaming random cut forest."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from rushhour.cli.app import JsonOpt, app, emit, progress_bar
from rushhour.errors import InputError, UsageError

CHUNK = 4096


@app.command()
def detect(
    file: Annotated[Path, typer.Argument(help="CSV with a timestamp column and numeric columns.")],
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the scored CSV.")
    ] = Path("scored.csv"),
    algo: Annotated[str, typer.Option(help="Detector: rcf (random cut forest).")] = "rcf",
    trees: Annotated[int, typer.Option(help="numberOfTrees, 1..1000.")] = 100,
    samples: Annotated[int, typer.Option(help="subSampleSize, 10..1000.")] = 256,
    decay: Annotated[int, typer.Option(help="timeDecay in records (> samples).")] = 100_000,
    shingle: Annotated[int, typer.Option(help="shingleSize, 1..30.")] = 1,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add anomaly_explanation (Kinesis JSON).")
    ] = False,
    timestamp: Annotated[str, typer.Option(help="Name of the timestamp column.")] = "timestamp",
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same scores.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every row, score-then-update, as Kinesis RANDOM_CUT_FOREST(_WITH_EXPLANATION) does.

    Every numeric column except the timestamp is an input dimension. The output has the input's
    columns plus anomaly_score (0 during the first --samples rows) and, with --explain,
    anomaly_explanation.
    """
    import numpy as np
    import pandas as pd

    from rushhour.detect.rcf.forest import RandomCutForest, RCFConfig
    from rushhour.detect.rcf.kinesis import explanation

    if algo != "rcf":
        raise UsageError(f"--algo must be rcf, got {algo!r}")
    config = RCFConfig(
        number_of_trees=trees,
        sub_sample_size=samples,
        time_decay=decay,
        shingle_size=shingle,
        seed=seed,
    )
    config.validate()
    if not file.exists():
        raise InputError("file not found", source=str(file))
    try:
        frame = pd.read_csv(file)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV: {exc}", source=str(file)) from exc
    columns = [
        c for c in frame.columns if c != timestamp and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if not columns:
        raise InputError(
            "no numeric column besides the timestamp", source=str(file), expected="numbers"
        )
    values = frame[columns].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            "empty or non-finite value",
            source=str(file),
            line=int(row) + 2,
            field=columns[col],
            expected="a number in every row",
        )
    forest = RandomCutForest(config, dimensions=len(columns))
    scores = np.zeros(len(frame))
    notes: list[str] = []
    started = time.perf_counter()
    with progress_bar(as_json) as progress:
        task = progress.add_task("scoring", total=len(frame)) if progress else None
        for lo in range(0, len(frame), CHUNK):
            result = forest.process(values[lo : lo + CHUNK], explain=explain)
            scores[lo : lo + len(result.scores)] = result.scores
            if explain:
                assert result.high is not None and result.low is not None
                for h, low_ in zip(result.high, result.low, strict=True):
                    notes.append(
                        json.dumps(explanation(columns, h, low_, with_directionality=True))
                    )
            if progress is not None and task is not None:
                progress.update(task, completed=min(len(frame), lo + CHUNK))
    elapsed = time.perf_counter() - started
    frame["anomaly_score"] = scores
    if explain:
        frame["anomaly_explanation"] = notes
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_path, index=False)
    top = int(np.argmax(scores)) if len(scores) else None
    emit(
        as_json,
        "scored",
        f"scored {len(frame):,} rows of {len(columns)} column(s) ({', '.join(columns)}) with "
        f"{trees} trees × {samples} samples in {elapsed:.1f}s; wrote [bold]{out_path}[/]"
        + (f"; highest score {scores[top]:.3f} at row {top + 2}" if top is not None else ""),
        out=str(out_path),
        rows=len(frame),
        columns=columns,
        seconds=round(elapsed, 3),
        max_score=float(scores.max()) if len(scores) else None,
        max_row=None if top is None else top + 2,
    )
