"""Data endpoints: ingest, series, points (downsampled), anomalies, training, forecasts, plans."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy import func, select

from rushhour.api.auth import require_token
from rushhour.api.downsample import choose_step, downsample, sparklines
from rushhour.api.endpoints import PLANNERS, endpoint_for, parse_time
from rushhour.api.errors import ApiError
from rushhour.errors import InputError
from rushhour.store import schema as t
from rushhour.store.db import SeriesRef, Store
from rushhour.timeutil import from_epoch

router = APIRouter(tags=["data"])

MAX_ID = 2**31 - 1
SeriesId = Annotated[int, Path(ge=1, le=MAX_ID, description="series id (GET /series)")]

MAX_POINTS = 5000
ANOMALOUS_WINDOW = 3600


def ctx(request: Request) -> Any:
    return request.app.state.ctx


# -- ingest ------------------------------------------------------------------------------------
FORMATS = {
    "application/jsonlines": "points",
    "application/x-ndjson": "points",
    "application/jsonl": "points",
    "text/csv": "csv",
}


class IngestResult(BaseModel):
    accepted: int
    rejected: dict[str, int]
    examples: list[str]
    series: list[str]


async def _upload(request: Request) -> tuple[bytes, str, str]:
    """(data, format, source name) from a multipart form's ``file`` field."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InputError(
            "the form has no file", source="upload", field="file", expected="a file field"
        )
    from rushhour.pipeline.readers import detect_format

    name = upload.filename or "upload"
    data = await upload.read()
    fmt = str(form.get("format") or "") or detect_format(name)
    return data, fmt, name


def _json_points(body: bytes) -> bytes:
    """A JSON array (or ``{"points": [...]}``) of points as JSON lines."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(
            "body is not JSON", source="request", expected="a JSON array of points"
        ) from None
    if isinstance(data, dict):
        data = data.get("points")
    if not isinstance(data, list):
        raise InputError(
            "not a list of points", source="request", field="points", expected="a JSON array"
        )
    return "\n".join(json.dumps(p) for p in data).encode()


@router.post(
    "/ingest",
    response_model=IngestResult,
    summary="Push points: JSON lines, a JSON array, CSV, or a multipart file upload",
    dependencies=[Depends(require_token)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/jsonlines": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def ingest(
    request: Request,
    series: str = Query("requests", description="series name of CSV rows"),
    strict: bool = Query(False, description="reject the whole body at its first bad record"),
    fmt: str | None = Query(
        None,
        alias="format",
        max_length=32,
        description="reader format (points, csv, or any other the readers know, e.g. flow logs "
        "once installed); default: from the content type or file name",
    ),
) -> IngestResult:
    from rushhour.pipeline.readers import read_points

    c = ctx(request)
    if c.queue is None:
        raise ApiError(
            503,
            "no pipeline runs in this process, so pushed points have nowhere to go",
            hint="start the API with `rushhour serve` or `rushhour run` with api.enabled = true",
        )
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    started = time.perf_counter()
    if ctype == "multipart/form-data":
        data, fmt_from_body, source = await _upload(request)
    elif ctype == "application/json" and not fmt:
        data, fmt_from_body, source = _json_points(await request.body()), "points", "request"
    elif ctype in FORMATS or fmt:  # with an explicit format the body is read as that format
        data, fmt_from_body, source = await request.body(), FORMATS.get(ctype, "points"), "request"
    else:
        raise ApiError(
            415,
            f"content type {ctype or 'missing'!r} is not supported",
            hint="send application/jsonlines, application/json, text/csv or a multipart file",
        )
    points = await asyncio.to_thread(
        read_points, data, fmt or fmt_from_body, source, series=series, strict=strict
    )
    c.metrics.stage("ingest_parse", time.perf_counter() - started)
    if len(points) == 0 and not points.rejected:
        raise InputError("no points in the body", source=source, expected="at least one record")
    if len(points) == 0:
        reasons = ", ".join(f"{n} {why}" for why, n in points.rejected.most_common())
        raise InputError(
            f"no readable records ({reasons}); e.g. {'; '.join(points.examples[:3])}",
            source=source,
            expected=f"records in the {fmt or fmt_from_body} format",
        )
    committed = time.perf_counter()
    if len(points):
        try:
            await c.queue.push(points)
        except RuntimeError as exc:  # the pipeline stopped before committing: not stored, retry
            raise ApiError(
                503,
                str(exc),
                hint="retry once the service is back; nothing from this request was stored",
            ) from exc
    c.metrics.stage("ingest_commit", time.perf_counter() - committed)
    return IngestResult(
        accepted=len(points),
        rejected=dict(points.rejected),
        examples=points.examples,
        series=sorted(set(points.keys)),
    )


# -- series ------------------------------------------------------------------------------------
class SeriesInfo(BaseModel):
    id: int
    key: str
    name: str
    labels: dict[str, str]
    bucket_seconds: int
    last: str | None
    status: str
    anomalies_recent: int
    sparkline: list[float] | None = None


class SeriesPage(BaseModel):
    series: list[SeriesInfo]
    total: int
    limit: int
    offset: int


def _one_series(store: Store, series_id: int) -> SeriesRef:
    with store.engine.connect() as conn:
        row = conn.execute(select(t.series).where(t.series.c.id == series_id)).mappings().first()
    if row is None:
        raise ApiError(404, f"no series with id {series_id}", hint="GET /series lists them")
    return SeriesRef(
        id=int(row["id"]),
        key=str(row["key"]),
        name=str(row["name"]),
        labels=dict(json.loads(row["labels"])),
        bucket_seconds=int(row["bucket_seconds"]),
    )


@router.get("/series", response_model=SeriesPage, summary="Series, paginated, with status")
def list_series(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    q: str | None = Query(None, max_length=200, description="only keys containing this text"),
    sparkline: int = Query(0, ge=0, le=200, description="points of a last-day sparkline (0: none)"),
) -> SeriesPage:
    store: Store = ctx(request).store
    s = t.series
    where = s.c.key.contains(q, autoescape=True) if q else None
    count = select(func.count()).select_from(s)
    page = select(s).order_by(s.c.id).limit(limit).offset(offset)
    if where is not None:
        count, page = count.where(where), page.where(where)
    with store.engine.connect() as conn:
        total = int(conn.execute(count).scalar_one())
        rows = [dict(r) for r in conn.execute(page).mappings()]
    out = describe_series(store, rows, sparkline)
    return SeriesPage(series=out, total=total, limit=limit, offset=offset)


def describe_series(
    store: Store, rows: list[dict[str, Any]], sparkline: int = 0
) -> list[SeriesInfo]:
    """Status, last bucket and sparkline of the given series rows, in a few grouped queries.

    A series is ``anomalous`` when it has anomalies in the hour before its own newest bucket.
    """
    ids = [int(r["id"]) for r in rows]
    last = store.last_buckets(ids)
    with store.engine.connect() as conn:
        recent: dict[int, int] = {}
        if last:
            for sid, st in conn.execute(
                select(t.anomalies.c.series_id, t.anomalies.c.start).where(
                    t.anomalies.c.series_id.in_(list(last))
                    & (t.anomalies.c.start >= min(last.values()) - ANOMALOUS_WINDOW)
                )
            ):
                if int(st) >= last[int(sid)] - ANOMALOUS_WINDOW:
                    recent[int(sid)] = recent.get(int(sid), 0) + 1
    newest = max(last.values(), default=0)
    sparks = sparklines(store, ids, newest + 1, 86400, sparkline) if sparkline else {}
    out = []
    for r in rows:
        sid = int(r["id"])
        status = "no data" if sid not in last else ("anomalous" if recent.get(sid) else "ok")
        out.append(
            SeriesInfo(
                id=sid,
                key=r["key"],
                name=r["name"],
                labels=json.loads(r["labels"]),
                bucket_seconds=r["bucket_seconds"],
                last=from_epoch(last[sid]).isoformat() if sid in last else None,
                status=status,
                anomalies_recent=recent.get(sid, 0),
                sparkline=sparks.get(sid) if sparkline else None,
            )
        )
    return out


def _range(store: Store, ref: SeriesRef, start: str | None, end: str | None) -> tuple[int, int]:
    """[from, to) in epoch seconds; defaults: the last day of the series' data."""
    b = t.buckets
    mine = b.c.series_id == ref.id
    # two scalar subqueries: each is one index probe, where min and max together scan the series
    oldest = select(func.min(b.c.start)).where(mine).scalar_subquery()
    newest = select(func.max(b.c.start)).where(mine).scalar_subquery()
    with store.engine.connect() as conn:
        lo, hi = conn.execute(select(oldest, newest)).one()
    stop = int(parse_time(end, "to").timestamp()) if end else int(hi or 0) + ref.bucket_seconds
    begin = int(parse_time(start, "from").timestamp()) if start else max(int(lo or 0), stop - 86400)
    if stop <= begin:
        raise InputError("'to' is not after 'from'", source="request", field="to")
    return begin, stop


@router.get(
    "/series/{series_id}",
    response_model=SeriesInfo,
    summary="One series (a browser is redirected to its dashboard page)",
)
def one_series(series_id: SeriesId, request: Request) -> Any:
    """JSON for clients; a browser (Accept: text/html), e.g. following an alert's link
    ``/series/<id>?from=..&to=..``, is sent to the dashboard's view of that range."""
    if "text/html" in request.headers.get("accept", ""):
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/ui/series/{series_id}{query}", status_code=303)
    store: Store = ctx(request).store
    with store.engine.connect() as conn:
        row = conn.execute(select(t.series).where(t.series.c.id == series_id)).mappings().first()
    if row is None:
        raise ApiError(404, f"no series with id {series_id}", hint="GET /series lists them")
    return describe_series(store, [dict(row)])[0]


@router.get("/series/{series_id}/points", summary="Values, downsampled on the server")
def points(
    series_id: SeriesId,
    request: Request,
    from_: str | None = Query(
        None, alias="from", description="ISO 8601; default: a day before 'to'"
    ),
    to: str | None = Query(None, description="ISO 8601; default: after the newest bucket"),
    resolution: int = Query(1000, ge=1, le=MAX_POINTS, description="at most this many points"),
) -> dict[str, Any]:
    store: Store = ctx(request).store
    ref = _one_series(store, series_id)
    begin, stop = _range(store, ref, from_, to)
    step = choose_step(begin, stop, ref.bucket_seconds, resolution)
    data = downsample(store, ref.id, begin, stop, step)
    anomalies = _anomalies(store, limit=1000, offset=0, series_id=ref.id, since=begin, until=stop)[
        0
    ]
    return {
        "series": ref.key,
        "from": from_epoch(begin).isoformat(),
        "to": from_epoch(stop).isoformat(),
        "step": step,
        "k": ctx(request).settings.detect.k,
        **data,
        "anomalies": anomalies,
    }


# -- anomalies ---------------------------------------------------------------------------------
def _anomalies(
    store: Store,
    *,
    limit: int,
    offset: int,
    series_id: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    a = t.anomalies
    cond = []
    if series_id is not None:
        cond.append(a.c.series_id == series_id)
    if since is not None:
        cond.append(a.c.start >= since)
    if until is not None:
        cond.append(a.c.start < until)
    q = (
        select(a, t.series.c.key)
        .join(t.series, t.series.c.id == a.c.series_id)
        .order_by(a.c.start.desc(), a.c.id.desc())
    )
    count = select(func.count()).select_from(a)
    for c in cond:
        q, count = q.where(c), count.where(c)
    with store.engine.connect() as conn:
        total = int(conn.execute(count).scalar_one())
        rows = conn.execute(q.limit(limit).offset(offset)).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        d["series"] = d.pop("key")
        d["time"] = from_epoch(d["start"]).isoformat()
        d["explanation"] = json.loads(d["explanation"]) if d["explanation"] else None
        out.append(d)
    return out, total


@router.get("/anomalies", summary="Stored anomalous buckets, newest first")
def anomalies(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    series_id: int | None = Query(None, ge=1, le=MAX_ID),
    since: str | None = Query(None, description="ISO 8601"),
) -> dict[str, Any]:
    store = ctx(request).store
    lo = int(parse_time(since, "since").timestamp()) if since else None
    rows, total = _anomalies(store, limit=limit, offset=offset, series_id=series_id, since=lo)
    return {"anomalies": rows, "total": total, "limit": limit, "offset": offset}


# -- training, forecasts, plans ----------------------------------------------------------------
@router.post(
    "/train",
    summary="Refit every series' model from stored history now",
    dependencies=[Depends(require_token)],
)
async def train(request: Request) -> dict[str, Any]:
    from rushhour.pipeline.retrain import train as run_training

    c = ctx(request)
    report = await asyncio.to_thread(run_training, c.settings, c.store, datetime.now(UTC))
    swapped = False
    if c.runtime is not None and report.models is not None:
        c.runtime.processor.bank.swap(report.models)  # hot swap between batches
        swapped = True
    return {**report.to_json(), "swapped": swapped}


def forecast_model(store: Store, series_id: int | None, kind: str) -> dict[str, Any]:
    """The newest model of ``kind`` trained for ``series_id`` (or the only one, when None)."""
    m = t.models
    q = (
        select(*t.MODEL_HEAD)
        .where(m.c.kind == kind)
        .order_by(m.c.trained_at.desc(), m.c.version.desc())
    )
    if series_id is not None:
        q = q.where(m.c.series_id == series_id)
    else:
        q = q.where(m.c.series_id.is_not(None))
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q.limit(1)).mappings()]
        owners = select(m.c.series_id).where((m.c.kind == kind) & m.c.series_id.is_not(None))
        several = series_id is None and len(conn.execute(owners.distinct().limit(2)).all()) > 1
    if several:
        raise InputError(
            "more than one series has a model",
            source="request",
            field="series",
            expected="?series=<id> (GET /series lists them)",
        )
    if not rows:
        raise ApiError(
            404,
            f"no {kind} model for series {series_id if series_id is not None else '(any)'}",
            hint="train one with POST /train or `rushhour train`",
        )
    return rows[0]


@router.get("/forecast/{series_id}", summary="Forecast ahead of a series' newest bucket")
def forecast(
    series_id: SeriesId,
    request: Request,
    horizon: str = Query("1h", description="how far ahead, e.g. 30m, 6h, 2d (at most 31d)"),
    model: str = Query(
        "mean_predictor",
        description="a stored model kind (mean_predictor), or a forecasting model fitted on demand "
        "(adaptive, holt-winters-mul, mstl-ets, seasonal-naive, ...)",
    ),
    start: str | None = Query(None, description="ISO 8601; default: the end of the data"),
) -> dict[str, Any]:
    from rushhour.api.routes.sagemaker import check_span
    from rushhour.timeutil import parse_duration

    store: Store = ctx(request).store
    ref = _one_series(store, series_id)
    ahead = parse_duration(horizon)
    if start:
        begin = parse_time(start, "start")
    else:
        last = store.last_buckets([ref.id]).get(ref.id)
        begin = from_epoch(last + ref.bucket_seconds) if last is not None else datetime.now(UTC)
    end = begin + ahead
    check_span(begin, end)
    from rushhour.forecast.registry import MODELS

    if model in MODELS:  # a forecasting model: fitted now on the stored history before `begin`
        from rushhour.api.models import fit_on_demand

        fc = fit_on_demand(ctx(request), ref, model, begin, end)
        row: dict[str, Any] = {"name": model, "kind": model, "version": 0}
    else:
        row = forecast_model(store, ref.id, model)
        endpoint = endpoint_for(row["kind"])
        fc = endpoint.forecast(ctx(request).models.get(row, endpoint), row, begin, end)
    frame = fc.to_frame()
    cols = [c for c in frame.columns if c != "Timestamp"]
    return {
        "series": ref.key,
        "model": {"name": row["name"], "kind": row["kind"], "version": row["version"]},
        "t": [int(ts.timestamp()) for ts in frame["Timestamp"]],
        **{c: [None if v != v else round(float(v), 4) for v in frame[c]] for c in cols},
    }


@router.get("/plan/{series_id}", summary="Capacity plan of a series (from a registered planner)")
def plan(
    series_id: SeriesId,
    request: Request,
    planner: str = Query("default", description="which registered planner"),
) -> dict[str, Any]:
    ref = _one_series(ctx(request).store, series_id)
    found = PLANNERS.get(planner)
    if found is None:
        raise ApiError(
            501,
            f"no capacity planner named {planner!r} is installed",
            hint=f"installed planners: {', '.join(sorted(PLANNERS)) or 'none yet'}",
        )
    params = {k: v for k, v in request.query_params.items() if k != "planner"}
    return found(ctx(request), ref, params)
