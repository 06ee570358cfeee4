"""The outbox: every delivery of an alert to a channel is a store row until it is sent.

Enqueueing writes one row per (alert group, status, channel) with a unique ``dedupe_key``, so doing
it twice (a restart replaying a batch) adds nothing. A worker *claims* due rows with a lease (a row
claimed by a process that dies becomes due again when the lease runs out), delivers them, and marks
them sent, or schedules the next attempt: exponential backoff with jitter, or the server's
``Retry-After``. Failing rows are retried for as long as it takes (a channel down for hours loses
nothing); only a permanent rejection (e.g. HTTP 400, unknown Slack channel) parks a row as ``dead``.

Before each request the worker marks the row ``sending`` (:meth:`Outbox.sending`); a process that
dies there leaves it so, and the row, due again once its lease runs out, is handed to the channel
*in doubt*: the receiver may already have it. Each channel then makes the delivery effectively
exactly-once as its receiver sees it: Slack (bot) looks for its message by metadata in the
channel's history and does not post it again; HTTP receivers get the same dedupe key
(``Idempotency-Key`` and a body field) and drop the repeat; email keeps its ``Message-ID``; the
JSON-lines file is checked for the key. ``docs/alerts.md`` says what each guarantees.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from rushhour.notify.alert import Alert
from rushhour.notify.registry import ChannelError, Delivery
from rushhour.store import schema as t
from rushhour.store.db import Store

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before attempt ``attempts + 1``: ``base·2^(attempts-1)`` capped, jittered in [½, 1].

    >>> r = random.Random(0)
    >>> [round(backoff(n, 2.0, 60.0, r), 1) for n in (1, 2, 3, 8)]
    [1.8, 3.5, 5.7, 37.8]
    """
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * rng.uniform(0.5, 1.0)


def group_id(alerts: list[Alert]) -> str:
    """One alert's id, or a stable id for a group of them."""
    if len(alerts) == 1:
        return alerts[0].id
    digest = hashlib.sha256("|".join(sorted(a.id for a in alerts)).encode()).hexdigest()[:16]
    return f"g{digest}-{alerts[0].status}"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    delivery: Delivery
    channel: str
    attempts: int
    state: str = PENDING


class Outbox:
    """Store-backed delivery queue."""

    def __init__(
        self,
        store: Store,
        *,
        retry_base: float = 2.0,
        retry_max: float = 600.0,
        lease: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.lease = lease
        self.rng = rng or random.Random()

    def enqueue(
        self,
        alerts: list[Alert],
        channels: list[str],
        *,
        now: float,
        due: float | None = None,
        image: bytes | None = None,
        group_labels: dict[str, str] | None = None,
    ) -> int:
        """One row per channel; returns how many were new (a replayed enqueue returns 0).

        ``now`` is the alerts' time (event time in the pipeline), ``due`` when the worker, which
        reads the wall clock, may deliver them (default ``now``)."""
        if not alerts or not channels:
            return 0
        gid = group_id(alerts)
        payload = json.dumps(
            {"alerts": [a.to_json() for a in alerts], "group_labels": group_labels or {}},
            sort_keys=True,
        )
        rows = [
            {
                "dedupe_key": f"{gid}:{ch}",
                "channel": ch,
                "alert_id": gid,
                "status": alerts[0].status,
                "payload": payload,
                "image": image,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": float(now if due is None else due),
                "lease_until": 0.0,
                "progress": "{}",
                "created_at": float(now),
            }
            for ch in channels
        ]
        with self.store.begin() as tx:
            before = self._count(tx)
            self.store._upsert(tx, t.alert_outbox, rows, keys=["dedupe_key"], update=[])
            return self._count(tx) - before

    @staticmethod
    def _count(tx: Any) -> int:
        return int(tx.execute(select(func.count()).select_from(t.alert_outbox)).scalar_one())

    def claim(self, now: float, limit: int = 20) -> list[OutboxItem]:
        """Due rows, each leased to this caller until ``now + lease``.

        A ``sending`` row whose lease ran out was cut off mid-delivery: it comes back in doubt.
        """
        o = t.alert_outbox
        due = (
            o.c.state.in_((PENDING, SENDING))
            & (o.c.next_attempt_at <= now)
            & (o.c.lease_until <= now)
        )
        with self.store.begin() as tx:
            rows = (
                tx.execute(select(o).where(due).order_by(o.c.next_attempt_at, o.c.id).limit(limit))
                .mappings()
                .all()
            )
            claimed = []
            for r in rows:
                res = tx.execute(
                    update(o).where(due & (o.c.id == r["id"])).values(lease_until=now + self.lease)
                )
                if res.rowcount == 1:  # another worker may have taken it meanwhile
                    claimed.append(_item(r))
        return claimed

    def sending(self, item: OutboxItem, now: float) -> None:
        """Record the attempt before the request: a crash from here on leaves the row in doubt.

        From here on the delivery's :meth:`~rushhour.notify.registry.Delivery.checkpoint` stores
        its progress in the row.
        """
        item.delivery.progress["attempt_at"] = float(now)
        self._set(item, state=SENDING)
        item.delivery.save = lambda progress: self._set(item)

    def done(self, item: OutboxItem, now: float) -> None:
        self._set(
            item,
            state=SENT,
            sent_at=now,
            lease_until=0.0,
            last_error=None,
            attempts=item.attempts + 1,
        )

    def failed(self, item: OutboxItem, error: ChannelError, now: float) -> float | None:
        """Record a failure; returns the delay until the next attempt (None when parked dead)."""
        attempts = item.attempts + 1
        if error.permanent:
            self._set(
                item, state=DEAD, attempts=attempts, lease_until=0.0, last_error=error.message
            )
            return None
        delay = backoff(attempts, self.retry_base, self.retry_max, self.rng)
        if error.retry_after is not None:
            # the server said when; a little jitter keeps many workers from returning together
            delay = error.retry_after + self.rng.uniform(0.0, min(1.0, error.retry_after * 0.1))
        self._set(
            item,
            state=PENDING,
            attempts=attempts,
            next_attempt_at=now + delay,
            lease_until=0.0,
            last_error=error.message,
        )
        return delay

    def _set(self, item: OutboxItem, **values: Any) -> None:
        values["progress"] = json.dumps(item.delivery.progress, sort_keys=True)
        with self.store.begin() as tx:
            tx.execute(
                update(t.alert_outbox).where(t.alert_outbox.c.id == item.id).values(**values)
            )

    # -- reading ----------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        o = t.alert_outbox
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(o.c.state, func.count()).group_by(o.c.state)).all()
        out = {PENDING: 0, SENDING: 0, SENT: 0, DEAD: 0}
        out.update({str(s): int(n) for s, n in rows})
        return out

    def rows(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        o = t.alert_outbox
        cols = [c for c in o.c if c.name not in ("image", "payload")]
        q = select(*cols).order_by(o.c.id.desc()).limit(limit)
        if state:
            q = q.where(o.c.state == state)
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]

    def next_due(self) -> float | None:
        """When the earliest undelivered row becomes claimable (epoch seconds)."""
        o = t.alert_outbox
        later = func.max if self.store.dialect == "sqlite" else func.greatest  # scalar max of two
        q = select(func.min(later(o.c.next_attempt_at, o.c.lease_until))).where(
            o.c.state.in_((PENDING, SENDING))
        )
        with self.store.engine.connect() as conn:
            v = conn.execute(q).scalar_one_or_none()
        return None if v is None else float(v)

    def image(self, alert_id: str) -> bytes | None:
        """The PNG of an alert (what ``GET /alerts/<id>/plot.png`` serves)."""
        o = t.alert_outbox
        with self.store.engine.connect() as conn:
            v = conn.execute(
                select(o.c.image)
                .where((o.c.alert_id == alert_id) & o.c.image.is_not(None))
                .limit(1)
            ).scalar_one_or_none()
        return None if v is None else bytes(v)


def _item(r: Any) -> OutboxItem:
    data = json.loads(r["payload"])
    return OutboxItem(
        id=int(r["id"]),
        channel=str(r["channel"]),
        attempts=int(r["attempts"]),
        state=str(r["state"]),
        delivery=Delivery(
            key=str(r["dedupe_key"]),
            alerts=[Alert.from_json(a) for a in data["alerts"]],
            image=None if r["image"] is None else bytes(r["image"]),
            group_labels=dict(data.get("group_labels", {})),
            progress=dict(json.loads(r["progress"] or "{}")),
            in_doubt=r["state"] == SENDING,
        ),
    )
