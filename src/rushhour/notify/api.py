"""HTTP routes of the notify area, for the API server to mount: silences, alert PNGs, the outbox.

``router(store, token)`` returns a FastAPI ``APIRouter``:

- ``GET /silences[?all=true]``; ``POST /silences`` with ``{"matchers": ["series=api"], "duration": "2h"}``
  (or ``starts_at``/``ends_at`` as ISO times, plus ``comment`` and ``created_by``); ``DELETE
  /silences/{id}``. Writes need ``Authorization: Bearer <api.token>`` when a token is configured.
- ``GET /alerts/{id}/plot.png``: the PNG the Slack incoming-webhook channel links to.
- ``GET /outbox[?state=pending]``: deliveries and their state.
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Response
from pydantic import BaseModel, Field

from rushhour.errors import RushhourError
from rushhour.notify.outbox import Outbox
from rushhour.notify.silences import add_silence, list_silences, parse_matchers, remove_silence
from rushhour.store.db import Store
from rushhour.timeutil import parse_duration, utc


class SilenceIn(BaseModel):
    matchers: list[str] = Field(min_length=1, description="label=value, label!=value, =~, !~")
    starts_at: datetime | None = Field(None, description="start (default now); naive means UTC")
    ends_at: datetime | None = Field(None, description="end; or give duration")
    duration: str | None = Field(None, description="length, e.g. 2h (default 1h)")
    comment: str = ""
    created_by: str = ""


def router(store: Store, token: str | None = None) -> APIRouter:
    """The notify routes over ``store``; ``token`` guards the writes."""
    r = APIRouter(tags=["notify"])

    def need_token(authorization: str | None = Header(None)) -> None:
        if not token:
            return
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "a valid bearer token is required for this endpoint")

    @r.get("/silences")
    def get_silences(all: bool = False) -> list[dict[str, Any]]:
        now = time.time()
        return [
            {**s.to_json(), "active": s.active(now)}
            for s in list_silences(store, now=now, expired=all)
        ]

    @r.post("/silences", status_code=201, dependencies=[Depends(need_token)])
    def post_silence(body: SilenceIn) -> dict[str, Any]:
        now = time.time()
        try:
            if body.ends_at is not None and body.duration is not None:
                raise HTTPException(400, "give duration or ends_at, not both")
            start = utc(body.starts_at).timestamp() if body.starts_at else now
            if body.ends_at is not None:
                end = utc(body.ends_at).timestamp()
            else:
                end = start + parse_duration(body.duration or "1h").total_seconds()
            s = add_silence(
                store,
                parse_matchers(body.matchers, "request body"),
                int(start),
                int(end),
                comment=body.comment,
                created_by=body.created_by,
                now=now,
            )
        except RushhourError as exc:
            raise HTTPException(400, exc.message) from exc
        return s.to_json()

    @r.delete("/silences/{silence_id}", status_code=204, dependencies=[Depends(need_token)])
    def delete_silence(silence_id: int) -> Response:
        if not remove_silence(store, silence_id):
            raise HTTPException(404, f"there is no silence {silence_id}")
        return Response(status_code=204)

    @r.get("/alerts/{alert_id}/plot.png")
    def alert_plot(alert_id: str) -> Response:
        png = Outbox(store).image(alert_id)
        if png is None:
            raise HTTPException(404, f"no plot for alert {alert_id}")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    @r.get("/outbox")
    def outbox(state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return Outbox(store).rows(state, min(max(limit, 1), 1000))

    return r
