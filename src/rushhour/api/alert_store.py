"""The store-backed :class:`~rushhour.api.routes.alerts.AlertRepository`: alerts from the delivery
outbox (one entry per alert, with its deliveries per channel) and silences from the silences table."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from rushhour.api.routes.alerts import SilenceIn
from rushhour.notify.silences import add_silence, list_silences, parse_matchers, remove_silence
from rushhour.store import schema as t
from rushhour.store.db import Store
from rushhour.timeutil import from_epoch


class StoreAlerts:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._counts = GroupCounts()

    def list_alerts(
        self, *, limit: int, offset: int, status: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of alerts (an alert id with a status), newest first, with their deliveries.

        The page's (alert, status) keys come from walking the outbox newest first over its
        ``created_at`` index, only as far as the page reaches; the total is kept by
        :class:`GroupCounts`. Only the page's rows are read and decoded, and never their images."""
        o = t.alert_outbox
        match = o.c.status == status if status is not None else None
        cols = [c for c in o.c if c.name != "image"]
        with self.store.engine.connect() as conn:
            total = self._counts(conn, status)
            keys = _newest_keys(conn, match, offset + limit)[offset:]
            rows = (
                conn.execute(
                    select(*cols)
                    .where(o.c.alert_id.in_({a for a, _ in keys}))
                    .order_by(o.c.created_at.desc(), o.c.id.desc())
                )
                .mappings()
                .all()
                if keys
                else []
            )
        wanted = set(keys)
        alerts: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            key = (r["alert_id"], r["status"])
            if key not in wanted:
                continue
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
        return [alerts[k] for k in keys if k in alerts], total

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


class GroupCounts:
    """How many (alert, status) groups the outbox holds, per status, kept exact from the rows added
    since the last call: a group's rows (one per channel) are added once and never removed, so a new
    row starts a group unless an older row has its key. The groups are counted in SQL at the first
    call, and again whenever the number of rows is not the one expected (a row removed, or one
    committed late with a lower id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_id = 0
        self._rows = -1
        self._groups: Counter[str] = Counter()

    def __call__(self, conn: Any, status: str | None) -> int:
        o = t.alert_outbox
        with self._lock:
            if self._rows < 0:
                self._recount(conn)
            else:
                fresh = conn.execute(
                    select(o.c.id, o.c.alert_id, o.c.status).where(o.c.id > self._last_id)
                ).all()
                rows = conn.execute(select(func.count()).select_from(o)).scalar_one()
                if rows != self._rows + len(fresh):
                    self._recount(conn)
                elif fresh:
                    self._add(conn, fresh)
            return sum(self._groups.values()) if status is None else self._groups[status]

    def _recount(self, conn: Any) -> None:
        o = t.alert_outbox
        top = int(conn.execute(select(func.coalesce(func.max(o.c.id), 0))).scalar_one())
        upto = o.c.id <= top
        groups = select(o.c.alert_id, o.c.status).where(upto).group_by(o.c.alert_id, o.c.status)
        sub = groups.subquery()
        per = select(sub.c.status, func.count()).group_by(sub.c.status)
        self._groups = Counter({str(st): int(n) for st, n in conn.execute(per)})
        self._rows = int(conn.execute(select(func.count()).where(upto)).scalar_one())
        self._last_id = top

    def _add(self, conn: Any, fresh: list[Any]) -> None:
        o = t.alert_outbox
        new = {(str(a), str(st)) for _, a, st in fresh}
        known: set[tuple[str, str]] = set()
        ids = sorted({a for a, _ in new})
        for i in range(0, len(ids), 500):  # bounded IN lists
            seen = select(o.c.alert_id, o.c.status).where(
                o.c.alert_id.in_(ids[i : i + 500]) & (o.c.id <= self._last_id)
            )
            known |= {(str(a), str(st)) for a, st in conn.execute(seen.distinct())}
        self._groups.update(st for _, st in new - known)
        self._rows += len(fresh)
        self._last_id = max(int(i) for i, _, _ in fresh)


def _newest_keys(conn: Any, match: Any, n: int) -> list[tuple[str, str]]:
    """The first ``n`` distinct (alert, status) keys of the outbox, newest row first; reads rows in
    growing batches until it has them (each key has one row per channel)."""
    o = t.alert_outbox
    q = select(o.c.alert_id, o.c.status).order_by(o.c.created_at.desc(), o.c.id.desc())
    if match is not None:
        q = q.where(match)
    batch = max(4 * n, 64)
    while True:
        rows = conn.execute(q.limit(batch)).all()
        keys = list(dict.fromkeys((str(a), str(s)) for a, s in rows))
        if len(keys) >= n or len(rows) < batch:
            return keys[:n]
        batch *= 4


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
