"""Operations: Prometheus ``/metrics`` and ``/healthz``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(request.app.state.ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness and readiness: store reachable, pipeline running")
def healthz(request: Request) -> JSONResponse:
    c = request.app.state.ctx
    checks: dict[str, Any] = {}
    try:
        with c.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception as exc:  # the point of a health check is to report, not raise
        checks["store"] = f"unreachable: {type(exc).__name__}"
    if c.runtime is not None:
        errors = c.runtime.stats.errors
        checks["pipeline"] = (
            "stopped: " + errors[-1]
            if errors
            else ("stopping" if c.runtime.stopping.is_set() else "running")
        )
    else:
        checks["pipeline"] = "not in this process"
    healthy = checks["store"] == "ok" and not str(checks["pipeline"]).startswith("stop")
    return JSONResponse(
        {
            "status": "ok" if healthy else "failing",
            "checks": checks,
            "uptime_seconds": round(time.time() - c.started, 1),
        },
        status_code=200 if healthy else 503,
    )
