"""The ``ingest`` command: raw flow logs, subscription payloads, metric dumps or series files in,
clean bucketed request-rate series out."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from rushhour.cli.app import ConfigOpt, JsonOpt, NoProgress, app, load_cli_settings, out
from rushhour.errors import InputError, UsageError

if TYPE_CHECKING:
    from rushhour.series.bucketing import BucketedSeries


def _progress(as_json: bool) -> Any:
    if as_json or not out.is_terminal:
        return NoProgress()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")


def _iso(epoch: int) -> str:
    from rushhour.timeutil import from_epoch

    return from_epoch(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(
    result: BucketedSeries,
    *,
    smooth: str | None,
    rescale: list[str],
    exclude_holidays: bool,
    country: str | None,
    subdiv: str | None,
    tz: str,
) -> BucketedSeries:
    from rushhour.cli.app import parse_day
    from rushhour.series import cleaning

    spec: str | list[float] | None = smooth
    if smooth and smooth[0].isdigit():
        try:
            spec = [float(x) for x in smooth.split(",")]
        except ValueError as exc:
            raise UsageError(f"cannot read kernel weights {smooth!r}") from exc
    intervals = []
    for text in rescale:
        span, _, factor = text.rpartition(":")
        lo, sep, hi = span.partition("..")
        try:
            f = float(factor)
        except ValueError:
            f = float("nan")
        if not sep or f != f:
            raise UsageError(
                f"cannot read --rescale {text!r}",
                hint="write START..END:FACTOR, e.g. 2019-01-26..2019-01-31:0.5",
            )
        intervals.append((parse_day(lo), parse_day(hi), f))
    out = {}
    for key, s in result.series.items():
        for lo_t, hi_t, f in intervals:
            s = cleaning.rescale(s, lo_t, hi_t, f)
        if exclude_holidays and country:
            s = cleaning.exclude_holidays(s, country=country, subdiv=subdiv, tz=tz)
        if spec:
            s = cleaning.smooth(s, spec)
        out[key] = s
    return replace(result, series=out)


def _split(result: BucketedSeries, holdout: str) -> tuple[BucketedSeries, BucketedSeries]:
    from rushhour.series.cleaning import train_test_split
    from rushhour.timeutil import parse_duration

    span = parse_duration(holdout)
    train, test = {}, {}
    for key, s in result.series.items():
        train[key], test[key] = train_test_split(s, span)
    return replace(result, series=train), replace(result, series=test)


@app.command()
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Input files (plain or .gz).")],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output: .csv (Timestamp,Value; one file per series when there are several), "
            ".jsonl (DeepAR lines) or .parquet (long format).",
        ),
    ] = Path("series.csv"),
    bucket: Annotated[str, typer.Option(help="Bucket width, e.g. 1m or 5m.")] = "1m",
    format: Annotated[
        str,
        typer.Option(
            help="auto, flowlog, cloudwatch-subscription, metrics, csv, jsonl or parquet."
        ),
    ] = "auto",
    flow_format: Annotated[
        str | None,
        typer.Option(
            help="Flow-log fields: v2, v5 or '${version} ${start} ...' (default: header or v2)."
        ),
    ] = None,
    labels: Annotated[
        str,
        typer.Option(
            help="Flow-log fields that split series, comma-separated (e.g. action,dstport)."
        ),
    ] = "action",
    values: Annotated[
        str, typer.Option(help="Flow-log values: requests, packets, bytes (comma-separated).")
    ] = "requests",
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Stop at the first malformed line instead of skipping it."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Ingest files even if the ledger has seen their content."),
    ] = False,
    ledger: Annotated[
        Path | None,
        typer.Option(
            help="Ledger of ingested content hashes (default: DATA_DIR/ingest-ledger.json)."
        ),
    ] = None,
    smooth: Annotated[
        str | None,
        typer.Option(help="Smooth each series: box:N, triangle:N, gaussian:N or weights 1,2,1."),
    ] = None,
    rescale: Annotated[
        list[str] | None,
        typer.Option(
            help="Rescale an interval: START..END:FACTOR, e.g. 2019-01-26..2019-01-31:0.5 "
            "(the seed's x2 glitch). Repeatable."
        ),
    ] = None,
    exclude_holidays: Annotated[
        bool,
        typer.Option(
            "--exclude-holidays",
            help="Make public holidays (holidays_country / holidays_subdiv settings) missing.",
        ),
    ] = False,
    holdout: Annotated[
        str | None,
        typer.Option(
            help="Also write OUT.train and OUT.test, holding out this last span, e.g. 1w."
        ),
    ] = None,
    prediction_length: Annotated[
        int, typer.Option(min=0, help="DeepAR: extend dynamic_feat by this many buckets.")
    ] = 0,
    timezone: Annotated[
        str | None, typer.Option(help="Zone of tzlocal() in metric dumps and of holiday flags.")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn flow logs, CloudWatch subscription payloads, metric dumps or CSV/JSON lines/Parquet
    series into bucketed request counts; prints records, buckets, gaps and rejected lines."""
    from rushhour.ingest import read_records
    from rushhour.ingest.flowlogs import require_layout, strict_check
    from rushhour.ingest.ledger import Ledger, content_hash
    from rushhour.series.bucketing import Bucketizer
    from rushhour.series.exports import write_csv, write_deepar, write_parquet
    from rushhour.timeutil import bucket_seconds

    settings = load_cli_settings(config, timezone=timezone)
    width = bucket_seconds(bucket)
    layout = require_layout(flow_format)
    label_list = [x.strip() for x in labels.split(",") if x.strip()]
    value_list = [x.strip() for x in values.split(",") if x.strip()]
    suffix = out_path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json", ".parquet"):
        raise UsageError(
            f"cannot tell the export format of {out_path}",
            hint="name the output .csv, .jsonl or .parquet",
        )
    led = Ledger(ledger or settings.data_dir / "ingest-ledger.json")
    sizes = {}
    for src in sources:
        if not src.exists():
            raise InputError("no such file", source=str(src))
        if not src.is_file():
            raise InputError("is not a regular file", source=str(src))
        sizes[src] = src.stat().st_size
    bz = Bucketizer(width)
    skipped: list[dict[str, str]] = []
    done_hashes: dict[str, str] = {}
    ingested: list[tuple[str, str, int]] = []
    t0 = time.perf_counter()
    total_bytes = sum(sizes.values())
    with _progress(as_json) as progress:
        task = progress.add_task("ingest", total=total_bytes, rate="") if progress else None
        base = 0
        for src in sources:
            digest = content_hash(src)
            seen = done_hashes.get(digest) or (None if force else led.seen(digest))
            if seen is not None:
                skipped.append({"source": str(src), "duplicate_of": seen})
                base += sizes[src]
                continue
            done_hashes[digest] = str(src)
            for batch in read_records(
                src,
                format=format,
                labels=label_list,
                values=value_list,
                layout=layout,
                tz=settings.timezone,
            ):
                if strict:
                    strict_check(batch)
                bz.add(batch)
                if progress is not None and task is not None:
                    rate = bz.lines / max(time.perf_counter() - t0, 1e-9)
                    progress.update(
                        task,
                        completed=base + min(batch.bytes_read, sizes[src]),
                        description=src.name,
                        rate=f"{rate:,.0f} lines/s",
                    )
            base += sizes[src]
            ingested.append((digest, str(src), sizes[src]))
    result = bz.result()
    elapsed = time.perf_counter() - t0
    cleaned = _clean(
        result,
        smooth=smooth,
        rescale=rescale or [],
        exclude_holidays=exclude_holidays,
        country=settings.holidays_country,
        subdiv=settings.holidays_subdiv,
        tz=settings.timezone,
    )
    parts = {"": cleaned}
    if holdout:
        parts = dict(zip((".train", ".test"), _split(cleaned, holdout), strict=True))
    written: list[str] = []
    for tag, part in parts.items():
        if not part.series:
            continue
        target = out_path.with_name(f"{out_path.stem}{tag}{out_path.suffix}")
        if suffix == ".csv":
            many = len(part.series) > 1
            for s in part:
                path = target.with_name(f"{target.stem}.{_slug(s.name)}.csv") if many else target
                write_csv(s, path)
                written.append(str(path))
        elif suffix == ".parquet":
            write_parquet(part, target)
            written.append(str(target))
        else:
            write_deepar(
                part,
                target,
                prediction_length=prediction_length,
                country=settings.holidays_country,
                subdiv=settings.holidays_subdiv,
                tz=settings.timezone,
            )
            written.append(str(target))
    for digest, src_name, size in ingested:
        led.record(digest, src_name, size)
    gaps = result.gaps()
    summary: dict[str, Any] = {
        "sources": [str(s) for s in sources],
        "duplicates_skipped": skipped,
        "lines": result.lines,
        "records": result.records,
        "nodata": result.nodata,
        "skipdata": result.skipdata,
        "rejected": result.rejected.total,
        "rejected_by_reason": result.rejected.to_json(),
        "bucket_seconds": width,
        "buckets": result.buckets,
        "series": [
            {"name": s.name, "total": float(sum(v for v in s.values.tolist() if v == v))}
            for s in result
        ],
        "first": _iso(result.covered[0][0]) if result.covered else None,
        "end": _iso(result.covered[-1][1]) if result.covered else None,
        "gaps": [[_iso(a), _iso(b)] for a, b in gaps],
        "out": written,
        "seconds": round(elapsed, 3),
        "records_per_second": round(result.lines / elapsed) if elapsed > 0 else None,
    }
    if as_json:
        out.print_json(json.dumps(summary))
        return
    out.print(
        f"ingested {result.lines:,} lines from {len(ingested)} file(s) in {elapsed:.1f}s "
        f"({summary['records_per_second'] or 0:,} lines/s): {result.records:,} records, "
        f"{result.nodata:,} NODATA, {result.skipdata:,} SKIPDATA",
        highlight=False,
    )
    for d in skipped:
        out.print(f"[yellow]skipped[/] {d['source']}: same content as {d['duplicate_of']} (ledger)")
    out.print(
        f"{result.buckets:,} buckets of {bucket} in {len(result.series)} series"
        + (f" from {summary['first']} to {summary['end']}" if result.covered else ""),
        highlight=False,
    )
    if gaps:
        out.print(
            f"[yellow]{len(gaps)} gap(s)[/] with no input: "
            + ", ".join(f"{a}..{b}" for a, b in summary["gaps"][:5])
        )
    if result.rejected.total:
        out.print(f"[yellow]rejected {result.rejected.total:,} line(s)[/]:")
        for reason, info in summary["rejected_by_reason"].items():
            out.print(
                f"  {info['count']:,} {reason} (e.g. {', '.join(info['examples'][:3])})",
                highlight=False,
            )
    for name in written:
        out.print(f"wrote [bold]{name}[/]")
