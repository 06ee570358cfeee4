"""Forecasting commands: ``backtest``, ``forecast``, ``plan``, ``deepar-train`` and ``deepar-deploy``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from rushhour.cli.app import ConfigOpt, JsonOpt, app, emit, load_cli_settings, out, progress_bar
from rushhour.errors import InputError, UsageError
from rushhour.timeutil import parse_duration, utc

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Model name (see `rushhour backtest --help`); default: the best."
    ),
]


def _context(config: Path | None, timezone: str | None) -> Any:
    from rushhour.forecast.registry import ModelContext

    settings = load_cli_settings(config, timezone=timezone)
    return ModelContext(
        timezone=settings.timezone,
        holidays_country=settings.holidays_country or None,
        holidays_subdiv=settings.holidays_subdiv,
    )


def _read(path: Path) -> pd.Series:
    # the ingest branch's reader can replace this one line
    from rushhour.forecast.series_file import read_series

    return read_series(path)


def _parse_start(text: str) -> datetime:
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as exc:
        raise UsageError(
            f"cannot read --start {text!r}", hint='write it as "YYYY-MM-DD HH:MM:SS" (UTC)'
        ) from exc


def _fit_predict(
    series: pd.Series, model: str | None, start: datetime, horizon: str, ctx: Any, load: Path | None
) -> Any:
    from rushhour.forecast.registry import DEFAULT_MODEL, build

    span = parse_duration(horizon)
    if span.total_seconds() <= 0:
        raise UsageError(f"--horizon must be positive, got {horizon!r}")
    past = series[series.index < pd.Timestamp(start)]
    if past.notna().sum() < 2:
        raise InputError(
            f"no history before {start:%Y-%m-%d %H:%M:%S}", hint="choose a later --start"
        )
    if load is not None:
        from rushhour.forecast.deepar import DeepAR

        fitted: Any = DeepAR.load(load).update(past)
    else:
        fitted = build(model or DEFAULT_MODEL, ctx).fit(past)
    return fitted.predict(start, start + span)


# -- backtest -----------------------------------------------------------------------------------
@app.command()
def backtest(
    file: Annotated[Path, typer.Argument(help="CSV with timestamp,value columns.")],
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated models: adaptive, seasonal-naive, mean-predictor, "
            "mean-predictor-dow, holt-winters-mul, holt-winters-add, mstl-ets, mstl-arima, deepar. "
            "Default: all but mstl-arima and deepar."
        ),
    ] = None,
    weeks: Annotated[
        int, typer.Option(min=0, help="Earlier weekly origins besides the last week.")
    ] = 4,
    horizons: Annotated[str, typer.Option(help="Comma-separated horizons.")] = "1w,3h",
    short_every: Annotated[str, typer.Option(help="Spacing of short-horizon origins.")] = "6h",
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "-o", help="Where backtest.md, .json and .png go.")
    ] = Path("backtest"),
    timezone: Annotated[str | None, typer.Option(help="Local zone of the rhythm (IANA).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rolling-origin backtest of the forecasters: RMSE, MAE, MASE, sMAPE, interval coverage, time."""
    from rushhour.forecast.backtest import COLUMNS, BacktestConfig, run_backtest, save

    ctx = _context(config, timezone)
    defaults = BacktestConfig()
    cfg = BacktestConfig(
        models=tuple(m.strip() for m in models.split(",")) if models else defaults.models,
        weeks=weeks,
        horizons=tuple(h.strip() for h in horizons.split(",")),
        short_every=short_every,
        context=ctx,
    )
    series = _read(file)
    with progress_bar(as_json) as progress:
        task = progress.add_task("backtest", total=None) if progress else None

        def advance(done: int, total: int, what: str) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total, description=what)

        result = run_backtest(series, cfg, advance)
    paths = save(result, out_dir, title=f"Backtest of {file.name}")
    if as_json:
        out.print_json(
            json.dumps(
                {**result.to_json(), "files": {k: str(v) for k, v in paths.items()}}, default=str
            )
        )
        return
    for subset in ("all", "normal", "holiday"):
        rows = result.table(subset)
        if not rows:
            continue
        table = Table(title=f"{file.name}: {subset} windows", header_style="bold")
        for c in COLUMNS:
            table.add_column(c, justify="left" if c in ("model", "horizon", "subset") else "right")
        for r in rows:
            table.add_row(*(_cell(r[c]) for c in COLUMNS))
        out.print(table)
    emit(False, "saved", f"saved {', '.join(str(p) for p in paths.values())}")


def _cell(v: Any) -> str:
    from rushhour.forecast.backtest import _fmt

    return _fmt(v)


# -- forecast -----------------------------------------------------------------------------------
@app.command("forecast")
def forecast_cmd(
    file: Annotated[Path, typer.Argument(help="CSV with timestamp,value columns.")],
    start: Annotated[str, typer.Option(help='First forecast step, "YYYY-MM-DD HH:MM:SS" (UTC).')],
    horizon: Annotated[str, typer.Option(help="How far ahead, e.g. 3h, 48h, 7d.")] = "7d",
    model: ModelOpt = None,
    load: Annotated[
        Path | None, typer.Option(help="A DeepAR model saved by `rushhour deepar-train`.")
    ] = None,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Where the CSV goes.")] = Path(
        "forecast.csv"
    ),
    timezone: Annotated[str | None, typer.Option(help="Local zone of the rhythm (IANA).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forecast from the history strictly before --start: Timestamp,Value,Std and quantile columns."""
    from rushhour.forecast.registry import DEFAULT_MODEL

    ctx = _context(config, timezone)
    begin = _parse_start(start)
    with progress_bar(as_json) as progress:
        if progress:
            progress.add_task(f"fitting {model or DEFAULT_MODEL}", total=None)
        fc = _fit_predict(_read(file), model, begin, horizon, ctx, load)
    frame = fc.to_frame()
    frame["Timestamp"] = frame["Timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_path, index=False, float_format="%.3f")
    emit(
        as_json,
        "forecast",
        f"wrote {len(frame)} steps from {begin:%Y-%m-%d %H:%M} ({model or DEFAULT_MODEL}) "
        f"to [bold]{out_path}[/]",
        out=str(out_path),
        steps=len(frame),
        model=model or DEFAULT_MODEL,
        columns=list(frame.columns),
    )


# -- plan ---------------------------------------------------------------------------------------
@app.command()
def plan(
    file: Annotated[Path, typer.Argument(help="CSV with timestamp,value columns.")],
    per_instance_rps: Annotated[
        float, typer.Option(min=0.000001, help="Requests per second one instance serves at 100%.")
    ],
    target_utilization: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Utilisation to plan for.")
    ] = 0.7,
    horizon: Annotated[str, typer.Option(help="How far ahead, e.g. 48h.")] = "48h",
    start: Annotated[
        str | None, typer.Option(help="First planned hour (default: right after the history).")
    ] = None,
    quantile: Annotated[float, typer.Option(help="Forecast quantile provisioned for.")] = 0.9,
    values: Annotated[
        str, typer.Option(help="The series holds `count` (requests per step) or `rps`.")
    ] = "count",
    min_capacity: Annotated[int, typer.Option(min=0, help="Fewest instances.")] = 1,
    model: ModelOpt = None,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Writes OUT.json and OUT.csv.")
    ] = Path("plan"),
    timezone: Annotated[str | None, typer.Option(help="Local zone of the rhythm (IANA).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hourly instance schedule from the upper forecast quantile (EC2 predictive scaling's shape)."""
    from rushhour.forecast.plan import PlanConfig, capacity_plan

    cfg = PlanConfig(
        per_instance_rps=per_instance_rps,
        target_utilization=target_utilization,
        quantile=quantile,
        min_capacity=min_capacity,
        values_are=values,
    )
    cfg.validate()
    ctx = _context(config, timezone)
    series = _read(file)
    if start:
        begin = _parse_start(start)
    else:
        from rushhour.forecast.calendar import infer_step

        begin = (series.dropna().index[-1] + infer_step(series.dropna().index)).to_pydatetime()
    from rushhour.forecast.adaptive import QUANTILES

    if model is None and quantile not in QUANTILES:
        raise UsageError(f"--quantile must be one of {QUANTILES}, got {quantile}")
    with progress_bar(as_json) as progress:
        if progress:
            progress.add_task("forecasting", total=None)
        fc = _fit_predict(series, model, begin, horizon, ctx, None)
    result = capacity_plan(fc, cfg)
    data = result.to_json()
    json_path = out_path.with_suffix(".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    csv_path = result.write_csv(out_path.with_suffix(".csv"))
    s = data["Summary"]
    if as_json:
        out.print_json(json.dumps({**data, "files": [str(json_path), str(csv_path)]}))
        return
    out.print(
        f"{s['hours']} hours from {begin:%Y-%m-%d %H:%M} UTC: {s['instance_hours']} instance-hours, "
        f"against {s['static_instance_hours']} for a static peak of {s['static_peak_capacity']} "
        f"instances: [bold]{100 * s['saving']:.1f}% saved[/]"
    )
    out.print(f"wrote [bold]{json_path}[/] and [bold]{csv_path}[/]")


DeployOpt = Annotated[
    str | None,
    typer.Option(
        "--deploy",
        help="Also store the model in the configured store as deepar/NAME, served by the API.",
    ),
]
InferenceConfigOpt = Annotated[
    str | None,
    typer.Option(
        help="Default request configuration (SageMaker's DEEPAR_INFERENCE_CONFIG), e.g. "
        '\'{"num_samples": 50, "output_types": ["mean", "quantiles"]}\'.'
    ),
]


# -- deepar-train -------------------------------------------------------------------------------
@app.command("deepar-train")
def deepar_train(
    export: Annotated[Path, typer.Argument(help="DeepAR JSON-lines export (one series a line).")],
    step: Annotated[str, typer.Option(help="Step of the series, e.g. 1m, 5m, 30m.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the model.")] = Path(
        "deepar-model"
    ),
    prediction_length: Annotated[str, typer.Option(help="Longest horizon.")] = "1w",
    context_length: Annotated[str, typer.Option(help="Steps the network reads.")] = "1d",
    epochs: Annotated[int, typer.Option(min=1)] = 15,
    batches: Annotated[int, typer.Option(min=1, help="Batches per epoch.")] = 50,
    hidden_size: Annotated[int, typer.Option(min=1)] = 40,
    num_layers: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    timezone: Annotated[str | None, typer.Option(help="Local zone of the rhythm (IANA).")] = None,
    deploy: DeployOpt = None,
    inference_config: InferenceConfigOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train DeepAR (extra `deepar`) on a JSON-lines export and save it for `rushhour forecast --load`;
    with --deploy NAME, also store it for the API (`POST /models/deepar/NAME/invocations`)."""
    from rushhour.forecast.deepar import DeepAR
    from rushhour.forecast.deepar_format import read_deepar_jsonl
    from rushhour.forecast.registry import MODELS

    if not MODELS["deepar"].available():
        raise UsageError("DeepAR needs the optional extra", hint="pip install 'rushhour[deepar]'")
    ctx = _context(config, timezone)
    records = read_deepar_jsonl(export)
    model = DeepAR(
        prediction_length=prediction_length,
        context_length=context_length,
        epochs=epochs,
        num_batches_per_epoch=batches,
        hidden_size=hidden_size,
        num_layers=num_layers,
        seed=seed,
        progress=not as_json and out.is_terminal,
        timezone=ctx.timezone,
        holidays_country=ctx.holidays_country,
        holidays_subdiv=ctx.holidays_subdiv,
    )
    model.fit_records(records, step)
    model.save(out_dir)
    deployed = _deploy(config, deploy, model, inference_config) if deploy else {}
    emit(
        as_json,
        "trained",
        f"trained DeepAR on {len(records)} series for {epochs} epochs; saved to [bold]{out_dir}[/]"
        + (
            f"; deployed as [bold]{deployed['model']}[/] v{deployed['version']}" if deployed else ""
        ),
        series=len(records),
        out=str(out_dir),
        **deployed,
    )


def _deploy(
    config: Path | None, name: str, model: Any, inference_config: str | None
) -> dict[str, Any]:
    from rushhour.api.models import deploy_deepar
    from rushhour.store import open_store

    try:
        cfg = json.loads(inference_config) if inference_config else {}
    except json.JSONDecodeError as exc:
        raise UsageError(f"--inference-config is not JSON: {exc.msg}") from exc
    if not isinstance(cfg, dict):
        raise UsageError("--inference-config must be a JSON object")
    store = open_store(load_cli_settings(config).store_url())
    try:
        full, version = deploy_deepar(store, name, model, cfg)
    except InputError as exc:
        raise UsageError(
            f"--inference-config: {exc.field}: {exc.reason}",
            hint=f"expected {exc.expected}" if exc.expected else None,
        ) from exc
    finally:
        store.close()
    return {"model": full, "version": version}


@app.command("deepar-deploy")
def deepar_deploy(
    model_dir: Annotated[Path, typer.Argument(help="A model folder from `rushhour deepar-train`.")],
    name: Annotated[str, typer.Option(help="Deploy as deepar/NAME.")],
    inference_config: InferenceConfigOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a trained DeepAR (extra `deepar`) for the API: GET /models lists it, and
    POST /models/deepar/NAME/invocations answers SageMaker's DeepAR requests."""
    from rushhour.forecast.deepar import DeepAR
    from rushhour.forecast.registry import MODELS

    if not MODELS["deepar"].available():
        raise UsageError("DeepAR needs the optional extra", hint="pip install 'rushhour[deepar]'")
    deployed = _deploy(config, name, DeepAR.load(model_dir), inference_config)
    emit(
        as_json,
        "deployed",
        f"deployed [bold]{model_dir}[/] as [bold]{deployed['model']}[/] v{deployed['version']}",
        **deployed,
    )
