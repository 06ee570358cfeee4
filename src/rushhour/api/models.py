"""The model families the API serves beyond the Mean Predictor: the forecasting registry (fitted on
demand from stored history, for ``GET /forecast/{id}?model=...`` and ``GET /plan/{id}``) and the
SageMaker-style Random Cut Forest (``POST /models/{name}/invocations`` for models of kind ``rcf``,
which training saves per series).

Importing this module registers them (``create_app`` does).
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from rushhour.api.endpoints import Invocation, ModelEndpoint, register_endpoint, register_planner
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
    last = context.store.last_buckets().get(series.id)
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

    def invoke(self, model: dict[str, Any], call: Invocation) -> list[dict[str, Any]]:
        from rushhour.detect.rcf.state import load

        forest = load(io.BytesIO(bytes(model["artifact"])))
        dim = forest.config.feature_dim  # type: ignore[union-attr]
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


register_endpoint(RCFEndpoint())
