"""SageMaker-compatible model endpoints: ``/ping``, ``/models``, invocations, and the seed's ``/predict``.

Invocation bodies follow SageMaker's built-in containers: ``application/json``
(``{"instances": [...], "configuration": {...}}``), ``application/jsonlines`` (one instance per line) and
``text/csv`` (one instance of ``features`` per row). Answers are JSON, or JSON lines when the client
accepts ``application/jsonlines``.
"""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from rushhour.api.auth import require_token
from rushhour.api.endpoints import MAX_INSTANCES, Invocation, endpoint_for, parse_time
from rushhour.api.errors import ApiError
from rushhour.errors import InputError
from rushhour.store import schema as t

router = APIRouter(tags=["models"])


def ctx(request: Request) -> Any:
    return request.app.state.ctx


class ModelInfo(BaseModel):
    name: str
    kind: str
    series: str | None = Field(None, description="key of the series the model was trained on")
    series_id: int | None = None
    version: int
    trained_at: str


class ModelList(BaseModel):
    models: list[ModelInfo]
    total: int
    limit: int
    offset: int


@router.get("/ping", summary="SageMaker health check")
def ping() -> PlainTextResponse:
    return PlainTextResponse("")


def deployed(store: Any) -> list[dict[str, Any]]:
    """The newest version of every stored model, with its series key."""
    newest = (
        select(t.models.c.name, func.max(t.models.c.version).label("version"))
        .group_by(t.models.c.name)
        .subquery()
    )
    q = (
        select(
            t.models.c.name,
            t.models.c.kind,
            t.models.c.series_id,
            t.models.c.version,
            t.models.c.trained_at,
            t.series.c.key,
        )
        .join(
            newest,
            (newest.c.name == t.models.c.name) & (newest.c.version == t.models.c.version),
        )
        .outerjoin(t.series, t.series.c.id == t.models.c.series_id)
        .order_by(t.models.c.name)
    )
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


@router.get("/models", response_model=ModelList, summary="Deployed models (newest version of each)")
def list_models(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    kind: str | None = Query(None, description="only models of this kind"),
) -> ModelList:
    from rushhour.timeutil import from_epoch

    rows = [r for r in deployed(ctx(request).store) if kind is None or r["kind"] == kind]
    page = rows[offset : offset + limit]
    return ModelList(
        models=[
            ModelInfo(
                name=r["name"],
                kind=r["kind"],
                series=r["key"],
                series_id=r["series_id"],
                version=r["version"],
                trained_at=from_epoch(r["trained_at"]).isoformat(),
            )
            for r in page
        ],
        total=len(rows),
        limit=limit,
        offset=offset,
    )


def parse_invocation(body: bytes, content_type: str) -> Invocation:
    """Instances from a SageMaker request body, by content type.

    >>> parse_invocation(b"1,2\\n3,4\\n", "text/csv").instances
    [{'features': [1.0, 2.0]}, {'features': [3.0, 4.0]}]
    >>> parse_invocation(b'{"features": [5]}\\n', "application/jsonlines").instances
    [{'features': [5]}]
    """
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(
                "body is not JSON", source="request", expected='{"instances": [...]}'
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("instances"), list):
            raise InputError(
                "missing instances", source="request", field="instances", expected="a list"
            )
        cfg = data.get("configuration") or {}
        if not isinstance(cfg, dict):
            raise InputError("configuration is not an object", source="request")
        instances = data["instances"]
    elif ctype in ("application/jsonlines", "application/x-ndjson", "application/jsonl"):
        instances, cfg = [], {}
        for i, line in enumerate(body.splitlines(), 1):
            if not line.strip():
                continue
            try:
                instances.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(
                    "not JSON", source="request", line=i, expected="one JSON object per line"
                ) from None
    elif ctype == "text/csv":
        instances, cfg = [], {}
        for i, row in enumerate(io.StringIO(body.decode(errors="replace")), 1):
            if not row.strip():
                continue
            try:
                instances.append({"features": [float(x) for x in row.strip().split(",")]})
            except ValueError:
                raise InputError(
                    "row is not all numbers",
                    source="request",
                    line=i,
                    expected="comma-separated numbers, one instance per row",
                ) from None
    else:
        raise ApiError(
            415,
            f"content type {ctype or 'missing'!r} is not supported",
            hint="send application/json, application/jsonlines or text/csv",
        )
    if not all(isinstance(x, dict) for x in instances):
        raise InputError("each instance must be a JSON object", source="request", field="instances")
    if not instances or len(instances) > MAX_INSTANCES:
        raise InputError(
            f"{len(instances)} instances",
            source="request",
            field="instances",
            expected=f"between 1 and {MAX_INSTANCES}",
        )
    return Invocation(instances, cfg)


@router.post(
    "/models/{name:path}/invocations",
    summary="Invoke a model (SageMaker built-in container format)",
    dependencies=[Depends(require_token)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/jsonlines": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def invoke(name: str, request: Request) -> Response:
    store = ctx(request).store
    row = await run_in_threadpool(store.load_model, name, artifact=False)
    if row is None:
        raise ApiError(404, f"no model named {name!r}", hint="GET /models lists deployed models")
    endpoint = endpoint_for(row["kind"])
    call = parse_invocation(await request.body(), request.headers.get("content-type", ""))
    # loading (the artifact, on the first call for this version) and invoking: off the event loop
    model = await run_in_threadpool(ctx(request).models.get, row, endpoint)
    results = await run_in_threadpool(endpoint.invoke, model, row, call)
    accept = request.headers.get("accept", "application/json")
    if "jsonlines" in accept or "ndjson" in accept:
        text = "".join(json.dumps(r) + "\n" for r in results)
        return Response(text, media_type="application/jsonlines")
    return JSONResponse({endpoint.result_key: results})


class PredictRequest(BaseModel):
    start: str = Field(..., examples=["2026-03-02 08:00:00"])
    end: str = Field(..., examples=["2026-03-02 09:00:00"])


@router.post(
    "/predict",
    summary="The seed's Mean Predictor contract: CSV Timestamp,Value,Std (JSON with Accept)",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def predict(
    body: PredictRequest,
    request: Request,
    series: int | None = Query(
        None, ge=1, le=2**31 - 1, description="series id; optional when one series has a model"
    ),
) -> Response:
    from rushhour.api.routes.data import forecast_model

    start, end = parse_time(body.start, "start"), parse_time(body.end, "end")
    check_span(start, end)
    row = forecast_model(ctx(request).store, series, "mean_predictor")
    endpoint = endpoint_for("mean_predictor")
    fc = endpoint.forecast(ctx(request).models.get(row, endpoint), row, start, end)
    frame = fc.to_frame()[["Timestamp", "Value", "Std"]]
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {
                "predictions": [
                    {
                        "Timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                        "Value": None if v != v else round(float(v), 4),
                        "Std": None if s != s else round(float(s), 4),
                    }
                    for ts, v, s in frame.itertuples(index=False)
                ]
            }
        )
    frame = frame.assign(Timestamp=frame["Timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    return Response(frame.to_csv(index=False, float_format="%.4f"), media_type="text/csv")


MAX_SPAN_DAYS = 31


def check_span(start: Any, end: Any) -> None:
    if end <= start:
        raise InputError(
            "end is not after start", source="request", field="end", expected="a later time"
        )
    if (end - start).total_seconds() > MAX_SPAN_DAYS * 86400:
        raise InputError(
            f"span longer than {MAX_SPAN_DAYS} days",
            source="request",
            field="end",
            expected=f"at most {MAX_SPAN_DAYS} days after start",
        )
