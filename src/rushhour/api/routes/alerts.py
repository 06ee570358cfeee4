"""Alerts and silences, over a small repository interface that the alerts feature implements.

The API does not know how alerts are stored or delivered: it asks an :class:`AlertRepository`. Until one
is installed (``create_app(..., alerts=repo)``), these routes answer 501 and say so. The server
installs :class:`~rushhour.api.alert_store.StoreAlerts`, over the outbox and silences tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from rushhour.api.auth import require_token
from rushhour.api.errors import ApiError
from rushhour.timeutil import utc

router = APIRouter(tags=["alerts"])


class SilenceIn(BaseModel):
    """Mute alerts that match every matcher, between ``starts_at`` and ``ends_at``."""

    matchers: list[str] = Field(
        ...,
        min_length=1,
        max_length=50,
        description="Alertmanager-style matchers over the series' labels plus series, severity and "
        "direction: label=value, label!=value, label=~regex, label!~regex",
        examples=[["series=requests", "region=~eu-.*"]],
    )
    starts_at: datetime | None = Field(None, description="default: now")
    ends_at: datetime
    comment: str = Field("", max_length=1000)
    created_by: str = Field("api", max_length=200)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a zone, e.g. 2026-03-02T08:00:00Z")
        return None if v is None else utc(v)


class AlertRepository(Protocol):
    """What the alert routes need from the alerts feature."""

    def list_alerts(
        self, *, limit: int, offset: int, status: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        """Alerts newest first (each with its explanation), and how many match in all."""
        ...

    def add_silence(self, silence: SilenceIn) -> dict[str, Any]:
        """Store a silence; return it with its ``id``."""
        ...

    def list_silences(self, *, active_at: datetime | None) -> list[dict[str, Any]]: ...

    def delete_silence(self, silence_id: int) -> bool: ...

    def plot(self, alert_id: str) -> bytes | None:
        """The alert's PNG (what chat messages link to), or None."""
        ...


def repo(request: Request) -> AlertRepository:
    found = request.app.state.ctx.alerts
    if found is None:
        raise ApiError(
            501,
            "alerts are not stored by this build yet",
            hint="the alerts feature (rushhour.notify outbox and silences) backs these routes",
        )
    return found


@router.get("/alerts", summary="Alerts, newest first, with explanations")
def alerts(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = Query(None, pattern="^(firing|resolved|silenced)$"),
) -> dict[str, Any]:
    rows, total = repo(request).list_alerts(limit=limit, offset=offset, status=status)
    return {"alerts": rows, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/alerts/{alert_id}/plot.png",
    summary="The plot of an alert (the image chat messages link to)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def alert_plot(request: Request, alert_id: str = Path(max_length=100)) -> Response:
    png = repo(request).plot(alert_id)
    if png is None:
        raise ApiError(404, f"no plot for alert {alert_id!r}", hint="GET /alerts lists alert ids")
    return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=86400"})


@router.get("/silences", summary="Silences (active now, or all)")
def silences(request: Request, active: bool = Query(False)) -> dict[str, Any]:
    from datetime import UTC

    rows = repo(request).list_silences(active_at=datetime.now(UTC) if active else None)
    return {"silences": rows}


@router.post(
    "/silences",
    status_code=201,
    summary="Create a silence",
    dependencies=[Depends(require_token)],
)
def add_silence(body: SilenceIn, request: Request) -> dict[str, Any]:
    from datetime import UTC

    start = body.starts_at or datetime.now(UTC)
    if body.ends_at <= start:
        raise ApiError(
            422,
            "ends_at is not after starts_at",
            hint="give an end in the future",
            kind="ValidationError",
        )
    body = body.model_copy(update={"starts_at": start})
    return repo(request).add_silence(body)


@router.delete(
    "/silences/{silence_id}",
    status_code=204,
    summary="Delete a silence",
    dependencies=[Depends(require_token)],
)
def delete_silence(silence_id: int = Path(ge=1, le=2**31 - 1), *, request: Request) -> None:
    if not repo(request).delete_silence(silence_id):
        raise ApiError(404, f"no silence with id {silence_id}", hint="GET /silences lists them")
