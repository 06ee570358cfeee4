"""Run the API in the pipeline's event loop: one process, one loop, one store.

The HTTP push source (:class:`~rushhour.pipeline.sources.queue.QueueSource`) is handed both to the
runtime, which polls it, and to the app, whose ``POST /ingest`` pushes into it and waits for the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from rushhour.api.app import create_app
from rushhour.api.auth import TokenGuard
from rushhour.errors import ServiceUnavailable
from rushhour.settings import Settings
from rushhour.store.db import Store


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (the pipeline stops it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """Bind now, so a busy port is a clear error before anything starts (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServiceUnavailable(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="pick another api.port (RUSHHOUR_API__PORT) or stop what uses it",
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def resolve_guard(settings: Settings) -> tuple[TokenGuard, str | None]:
    configured = settings.api.token.get_secret_value() if settings.api.token else None
    return TokenGuard.resolve(configured, Path(settings.data_dir))


async def serve_with_runtime(
    settings: Settings,
    store: Store,
    runtime: Any,
    queue: Any,
    *,
    duration: float | None = None,
    drain: bool = False,
    on_ready: Callable[[str], None] | None = None,
    alerts: Any = None,
) -> Any:
    """Serve the API while ``runtime`` runs (``queue`` must be one of its sources); returns its stats."""
    guard, _ = resolve_guard(settings)
    if alerts is None:
        alerts = default_alerts(store)
    app = create_app(settings, store, guard=guard, queue=queue, runtime=runtime, alerts=alerts)
    sock = bind(settings.api.host, settings.api.port)
    host, port = sock.getsockname()[:2]
    try:
        runtime.prepare()  # warm before answering: a first push must not wait for the warm-up
    except BaseException:
        sock.close()  # the port is free again for whoever retries
        raise
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = EmbeddedServer(config)
    http = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not http.done():
        await asyncio.sleep(0.01)
    if on_ready is not None:
        on_ready(f"http://{host}:{port}")
    try:
        # a draining run also waits for the HTTP source to be idle, so it stops once nothing arrives
        return await runtime.run(duration=duration, until_idle=drain)
    finally:
        server.should_exit = True
        await asyncio.gather(http, return_exceptions=True)
        sock.close()


def default_alerts(store: Store) -> Any:
    """The store-backed alert repository when the alerts feature is installed, else None."""
    try:
        from rushhour.api.alert_store import StoreAlerts
    except ImportError:  # pragma: no cover - the alerts feature is part of this build
        return None
    return StoreAlerts(store)


async def serve_with_pipeline(
    settings: Settings,
    store: Store,
    clock: Any,
    channels: Sequence[Any] = (),
    *,
    base: Path | None = None,
    duration: float | None = None,
    drain: bool = False,
    on_outcome: Callable[..., None] | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_runtime: Callable[[Any], None] | None = None,
    alerts: Any = None,
) -> Any:
    """Build the pipeline with an HTTP push source and serve the API beside it (tests, embedding)."""
    from rushhour.pipeline.service import build_runtime
    from rushhour.pipeline.sources.queue import QueueSource

    queue = QueueSource()
    runtime = build_runtime(
        settings, store, clock, channels, base=base, extra_sources=[queue], on_outcome=on_outcome
    )
    if on_runtime is not None:
        on_runtime(runtime)
    return await serve_with_runtime(
        settings,
        store,
        runtime,
        queue,
        duration=duration,
        drain=drain,
        on_ready=on_ready,
        alerts=alerts,
    )
