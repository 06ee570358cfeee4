"""The model families the API serves beyond the Mean Predictor: the forecasting registry (fitted on
demand from stored history, for ``GET /forecast/{id}?model=...`` and ``GET /plan/{id}``), the
SageMaker-style Random Cut Forest (``POST /models/{name}/invocations`` for models of kind ``rcf``,
which training saves per series) and SageMaker-style DeepAR (models of kind ``deepar``, which
``rushhour deepar-train --deploy NAME`` or ``rushhour deepar-deploy DIR --name NAME`` store).

Importing this module registers them (``create_app`` does).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from rushhour.api.endpoints import (
    Invocation,
    ModelEndpoint,
    check_volume,
    deepar_configuration,
    format_prediction,
    register_endpoint,
    register_planner,
)
from rushhour.api.errors import ApiError
from rushhour.errors import InputError
from rushhour.forecast.base import Forecast
from rushhour.timeutil import from_epoch, parse_duration, to_epoch

HISTORY_WEEKS = 4


def fit_on_demand(context: Any, series: Any, name: str, start: datetime, end: datetime) -> Forecast:
    """Fit registry model ``name`` on the weeks of stored history before ``start``; forecast."""
    from rushhour.forecast.registry import MODELS, ModelContext, build

    if name == "deepar":
        raise ApiError(
            501,
            "DeepAR is not trained inside a request",
            hint="train it with `rushhour deepar-train` and forecast with `rushhour forecast --load`",
        )
    if name not in MODELS:
        raise ApiError(
            404,
            f"no forecasting model named {name!r}",
            hint=f"choose from {', '.join(sorted(MODELS))}",
        )
    settings = context.settings
    history = context.store.read_buckets(
        series.id, to_epoch(start - timedelta(weeks=HISTORY_WEEKS)), to_epoch(start)
    )
    if len(history) < 2:
        raise ApiError(
            404,
            f"series {series.id} has no history before {start:%Y-%m-%d %H:%M}",
            hint="ingest some data first",
        )
    model = build(
        name, ModelContext(settings.timezone, settings.holidays_country, settings.holidays_subdiv)
    )
    return model.fit(history).predict(start, end)


@register_planner("default")
def default_planner(context: Any, series: Any, params: dict[str, str]) -> dict[str, Any]:
    """``GET /plan/{id}?per_instance_rps=N[&target_utilization=0.7&horizon=48h&quantile=0.9&model=adaptive]``:
    an hourly instance schedule from the upper forecast quantile, and the saving against static peak."""
    from rushhour.forecast.plan import PlanConfig, capacity_plan
    from rushhour.forecast.registry import DEFAULT_MODEL

    def number(key: str, default: float | None) -> float:
        raw = params.get(key)
        if raw is None:
            if default is None:
                raise InputError(
                    f"missing {key}", source="request", field=key, expected="a number > 0"
                )
            return default
        try:
            return float(raw)
        except ValueError:
            raise InputError(
                f"{key} is not a number", source="request", field=key, expected="a number"
            ) from None

    config = PlanConfig(
        per_instance_rps=number("per_instance_rps", None),
        target_utilization=number("target_utilization", 0.7),
        quantile=number("quantile", 0.9),
    )

    last = context.store.last_buckets([series.id]).get(series.id)
    if last is None:
        raise ApiError(404, f"series {series.id} has no data yet", hint="ingest some data first")
    start = from_epoch(last + series.bucket_seconds)
    horizon = parse_duration(params.get("horizon", "48h"))
    forecast = fit_on_demand(
        context, series, params.get("model", DEFAULT_MODEL), start, start + horizon
    )
    return {"series": series.key, **capacity_plan(forecast, config).to_json()}


class RCFEndpoint(ModelEndpoint):
    """SageMaker's RCF container: ``{"instances": [{"features": [...]}]}`` -> ``{"scores": [...]}``."""

    kind = "rcf"
    result_key = "scores"

    def load(self, artifact: bytes, row: Mapping[str, Any]) -> Any:
        from rushhour.detect.rcf.state import load

        return load(io.BytesIO(artifact))

    def invoke(self, forest: Any, row: Mapping[str, Any], call: Invocation) -> list[dict[str, Any]]:
        dim = forest.config.feature_dim
        rows = []
        for i, inst in enumerate(call.instances):
            features = inst.get("features")
            if not isinstance(features, list) or len(features) != dim:
                raise InputError(
                    "features of the wrong length",
                    source="request",
                    field=f"instances[{i}].features",
                    expected=f"a list of {dim} numbers (the model's feature_dim)",
                )
            rows.append(features)
        try:
            scores = (
                np.atleast_1d(forest.score(np.asarray(rows, dtype=float))) if rows else np.zeros(0)
            )
        except (TypeError, ValueError):
            raise InputError(
                "features are not all numbers", source="request", field="instances"
            ) from None
        return [{"score": float(s)} for s in scores]


class DeepAREndpoint(ModelEndpoint):
    """SageMaker's DeepAR container: instances with ``start``, ``target``, ``cat`` and ``dynamic_feat``
    (as the model was trained) and a ``configuration`` -> ``{"predictions": [{"mean", "quantiles",
    "samples"}]}`` for the trained ``prediction_length`` steps after each target."""

    kind = "deepar"
    result_key = "predictions"

    @staticmethod
    def _require_extra(row: Mapping[str, Any]) -> None:
        from rushhour.forecast.registry import MODELS

        if not MODELS["deepar"].available():
            raise ApiError(
                503,
                f"model {row['name']!r} is a DeepAR network, and this server lacks the extra `deepar`",
                hint="pip install 'rushhour[deepar]' where the API runs, then restart it",
            )

    def load(self, artifact: bytes, row: Mapping[str, Any]) -> Any:
        self._require_extra(row)
        from rushhour.forecast.deepar import DeepAR

        return DeepAR.from_bytes(artifact)

    def invoke(self, deepar: Any, row: Mapping[str, Any], call: Invocation) -> list[dict[str, Any]]:
        self._require_extra(row)  # a network loaded earlier still needs GluonTS to sample
        steps = deepar.horizon_steps
        deployed = json.loads(row.get("params") or "{}").get("inference_config", {})
        cfg = deepar_configuration(deployed | call.configuration, trained_length=steps)
        check_volume(len(call.instances), cfg["num_samples"], steps)
        records = [deepar_instance(deepar, x, i, steps) for i, x in enumerate(call.instances)]
        out = []
        for rec, paths in zip(
            records, deepar.sample_paths(records, cfg["num_samples"]), strict=True
        ):
            index = pd.date_range(
                rec.start + deepar.step_ * len(rec.target), periods=steps, freq=deepar.step_
            )
            levels = {float(q): np.quantile(paths, float(q), axis=0) for q in cfg["quantiles"]}
            fc = Forecast(index, paths.mean(axis=0), paths.std(axis=0), levels)
            out.append(format_prediction(fc, cfg, samples=paths))
        return out


def deploy_deepar(
    store: Any, name: str, model: Any, inference_config: dict[str, Any] | None = None
) -> tuple[str, int]:
    """Store a trained DeepAR as model ``deepar/<name>`` (a new version), the way training stores the
    Mean Predictor and RCF: ``GET /models`` lists it and ``POST /models/deepar/<name>/invocations``
    serves it. ``inference_config`` is SageMaker's DEEPAR_INFERENCE_CONFIG: the default
    ``configuration`` of requests (JSON lines carry none)."""
    config = dict(inference_config or {})
    deepar_configuration(config, trained_length=model.horizon_steps)  # fail now, not per request
    full = f"deepar/{name}"
    params = {
        "prediction_length": model.prediction_length,
        "prediction_steps": model.horizon_steps,
        "context_length": model.context_length,
        "step_seconds": model.step_.total_seconds(),
        "cardinality": model.cardinality_,
        "dynamic_feat": model.n_feat_,
        "inference_config": config,
    }
    return full, store.save_model(full, "deepar", model.to_bytes(), params=params)


def deepar_instance(model: Any, inst: dict[str, Any], i: int, steps: int) -> Any:
    """One request instance as a DeepAR record, checked against what the model was trained with:
    ``cat`` (one id per trained category, each below its cardinality) and ``dynamic_feat`` (one row per
    trained feature, each ``len(target) + prediction_length`` long); both absent when not trained."""
    from rushhour.forecast.deepar_format import record_from

    card, n_feat = model.cardinality_, model.n_feat_
    target, feats = inst.get("target"), inst.get("dynamic_feat", [])
    need = (len(target) if isinstance(target, list) else 0) + steps
    rows = feats if isinstance(feats, list) else [None]
    if len(rows) != n_feat or not all(isinstance(f, list) and len(f) == need for f in rows):
        lengths = [len(f) if isinstance(f, list) else None for f in rows]
        raise InputError(
            f"dynamic_feat has {len(rows)} rows of lengths {lengths}",
            source="request",
            field=f"instances[{i}].dynamic_feat",
            expected=(
                f"{n_feat} rows of len(target) + prediction_length = {need} values"
                if n_feat
                else "no dynamic_feat: the model was trained without them"
            ),
        )
    rec = record_from(inst, source=f"request instances[{i}]")
    if len(rec.cat) != len(card) or any(c >= k for c, k in zip(rec.cat, card, strict=False)):
        raise InputError(
            f"cat is {rec.cat!r}",
            source="request",
            field=f"instances[{i}].cat",
            expected=(
                f"{len(card)} category ids below {card} (as the model was trained)"
                if card
                else "no cat: the model was trained without categories"
            ),
        )
    return rec


register_endpoint(RCFEndpoint())
register_endpoint(DeepAREndpoint())
