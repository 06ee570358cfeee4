"""The FastAPI application: ``create_app`` wires the routes to one :class:`ApiContext`.

The context holds what routes need: settings, the store, the token guard, and, when a pipeline runs in
the same process, its runtime and the HTTP push queue (``POST /ingest`` waits until its points are
committed). Features built elsewhere plug in through small interfaces: model endpoints and planners
(:mod:`rushhour.api.endpoints`) and the alert repository (:class:`~rushhour.api.routes.alerts.AlertRepository`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rushhour import __version__
from rushhour.api import errors
from rushhour.api import models as _models  # noqa: F401  (registers forecasting, plans and RCF)
from rushhour.api.auth import TokenGuard
from rushhour.api.endpoints import LoadedModels
from rushhour.api.metrics import ApiMetrics
from rushhour.settings import Settings
from rushhour.store.db import Store


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    guard: TokenGuard
    queue: Any = None  # QueueSource the runtime polls, or None (then POST /ingest answers 503)
    runtime: Any = None  # the pipeline Runtime in this process, or None
    alerts: Any = None  # an AlertRepository, or None until the alerts feature backs it
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    started: float = field(default_factory=time.time)
    models: LoadedModels = field(init=False)

    def __post_init__(self) -> None:
        self.metrics.attach(self.runtime)
        self.models = LoadedModels(self.store)


class BodyLimit:
    """Refuse bodies larger than ``limit`` bytes with 413, by header and while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.ApiError(413, self._message(), hint=self._hint())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"request body larger than {self.limit} bytes"

    def _hint(self) -> str:
        return "split the upload, or raise api.max_body_bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            errors.body("PayloadTooLarge", self._message(), self._hint()), status_code=413
        )
        await response(scope, receive, send)


def create_app(
    settings: Settings,
    store: Store,
    *,
    guard: TokenGuard | None = None,
    queue: Any = None,
    runtime: Any = None,
    alerts: Any = None,
) -> FastAPI:
    """The API and dashboard over ``store``."""
    from rushhour.api import dashboard
    from rushhour.api.routes import alerts as alert_routes
    from rushhour.api.routes import data, ops, sagemaker

    if guard is None:
        configured = settings.api.token.get_secret_value() if settings.api.token else None
        guard, _ = TokenGuard.resolve(configured, Path(settings.data_dir))
    app = FastAPI(
        title="rushhour",
        version=__version__,
        # Swagger UI and ReDoc load their scripts from a CDN; the app makes no outside request
        docs_url=None,
        redoc_url=None,
        description="Traffic rhythm, anomalies, alerts and forecasts. Write endpoints need "
        '\'Authorization: Bearer <token>\'. Errors: {"error": {"type", "message", "hint"}}.',
    )
    app.state.ctx = ApiContext(settings, store, guard, queue, runtime, alerts)
    errors.install(app)
    for module in (sagemaker, data, alert_routes, ops):
        app.include_router(module.router)
    dashboard.mount(app)

    @app.middleware("http")
    async def _timing(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        app.state.ctx.metrics.observe_request(
            request.method, path, response.status_code, time.perf_counter() - started
        )
        return response

    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    return app
