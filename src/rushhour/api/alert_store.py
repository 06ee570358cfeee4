"""The store-backed :class:`~rushhour.api.routes.alerts.AlertRepository`: alerts from the delivery
outbox (one entry per alert, with its deliveries per channel) and silences from the silences table."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select

from rushhour.api.routes.alerts import SilenceIn
from rushhour.notify.silences import add_silence, list_silences, parse_matchers, remove_silence
from rushhour.store import schema as t
from rushhour.store.db import Store
from rushhour.timeutil import from_epoch


class StoreAlerts:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list_alerts(
        self, *, limit: int, offset: int, status: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        o = t.alert_outbox
        q = select(o).order_by(o.c.created_at.desc(), o.c.id.desc())
        if status is not None:
            q = q.where(o.c.status == status)
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        alerts: dict[str, dict[str, Any]] = {}
        for r in rows:
            key = f"{r['alert_id']}/{r['status']}"
            entry = alerts.get(key)
            if entry is None:
                payload = json.loads(r["payload"])
                entry = {
                    "id": r["alert_id"],
                    "status": r["status"],
                    "created_at": from_epoch(int(r["created_at"])).isoformat(),
                    "alerts": [_summary(a) for a in payload.get("alerts", [])],
                    "group_labels": payload.get("group_labels", {}),
                    "deliveries": [],
                }
                alerts[key] = entry
            entry["deliveries"].append(
                {
                    "channel": r["channel"],
                    "state": r["state"],
                    "attempts": r["attempts"],
                    "last_error": r["last_error"],
                }
            )
        items = list(alerts.values())
        return items[offset : offset + limit], len(items)

    def add_silence(self, silence: SilenceIn) -> dict[str, Any]:
        assert silence.starts_at is not None
        s = add_silence(
            self.store,
            parse_matchers(silence.matchers, "request body"),
            int(silence.starts_at.timestamp()),
            int(silence.ends_at.timestamp()),
            comment=silence.comment,
            created_by=silence.created_by,
            now=time.time(),
        )
        return _silence(s.to_json())

    def list_silences(self, *, active_at: datetime | None) -> list[dict[str, Any]]:
        now = active_at.timestamp() if active_at else None
        found = list_silences(self.store, now=now, expired=active_at is None)
        if now is not None:
            found = [s for s in found if s.active(now)]
        return [_silence(s.to_json()) for s in found]

    def delete_silence(self, silence_id: int) -> bool:
        return remove_silence(self.store, silence_id)

    def plot(self, alert_id: str) -> bytes | None:
        from rushhour.notify.outbox import Outbox

        return Outbox(self.store).image(alert_id)


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """An alert with its explanation sentence (as the channels phrase it)."""
    from rushhour.notify.alert import Alert

    try:
        return Alert.from_json(data).summary_json()
    except (TypeError, ValueError, KeyError):  # an older payload: show it as stored
        return data


def _silence(d: dict[str, Any]) -> dict[str, Any]:
    return {
        **d,
        "starts_at": from_epoch(int(d["starts_at"])).isoformat(),
        "ends_at": from_epoch(int(d["ends_at"])).isoformat(),
    }
