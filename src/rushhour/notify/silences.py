"""Silence and maintenance windows: label matchers, a start and an end, a comment.

Matchers follow Alertmanager's forms: ``label=value``, ``label!=value``, ``label=~regex`` and
``label!~regex`` (regexes match the whole value). A silence mutes alerts whose labels (the series'
labels plus ``series``, ``severity`` and ``direction``) match all its matchers while it is active.

>>> m = parse_matchers(["series=connected-drive", "region=~eu-.*"])
>>> matches(m, {"series": "connected-drive", "region": "eu-west"})
True
>>> matches(m, {"series": "connected-drive", "region": "us-east"})
False
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from rushhour.errors import InputError, UsageError
from rushhour.store import schema as t
from rushhour.store.db import Store

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def test(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


def parse_matcher(text: str, source: str = "matcher") -> Matcher:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``."""
    m = _MATCHER.match(text)
    if m is None:
        raise InputError(
            f"cannot read matcher {text!r}",
            source=source,
            expected="label=value, label!=value, label=~regex or label!~regex",
        )
    label, op, value = m.groups()
    value = value.strip('"')
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise InputError(f"bad regex {value!r}: {exc}", source=source, field=label) from exc
    return Matcher(label, op, value)


def parse_matchers(texts: list[str], source: str = "matcher") -> list[Matcher]:
    if not texts:
        raise UsageError("a silence needs at least one matcher", hint="e.g. series=connected-drive")
    return [parse_matcher(x, source) for x in texts]


def matches(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.test(labels) for m in matchers)


@dataclass(frozen=True)
class Silence:
    """A stored silence. Times are epoch seconds; active in ``[starts_at, ends_at)``."""

    id: int
    matchers: list[Matcher]
    starts_at: int
    ends_at: int
    comment: str = ""
    created_by: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: dict[str, str], now: float) -> bool:
        return self.active(now) and matches(self.matchers, labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "comment": self.comment,
            "created_by": self.created_by,
        }


def add_silence(
    store: Store,
    matchers: list[Matcher],
    starts_at: int,
    ends_at: int,
    *,
    comment: str = "",
    created_by: str = "",
    now: float,
) -> Silence:
    """Store a silence; its end must follow its start."""
    if ends_at <= starts_at:
        raise UsageError(
            f"a silence must end after it starts, got start {starts_at} and end {ends_at}",
            hint="give --end later than --start, or --for 2h",
        )
    with store.begin() as tx:
        res = tx.execute(
            t.silences.insert().values(
                matchers=json.dumps([str(m) for m in matchers]),
                starts_at=int(starts_at),
                ends_at=int(ends_at),
                comment=comment,
                created_by=created_by,
                created_at=int(now),
            )
        )
        pk = res.inserted_primary_key
        assert pk is not None
        new_id = int(pk[0])
    return Silence(new_id, list(matchers), int(starts_at), int(ends_at), comment, created_by)


def list_silences(
    store: Store, *, now: float | None = None, expired: bool = False
) -> list[Silence]:
    """Silences ordered by start; without ``expired``, only those not yet over at ``now``."""
    q = select(t.silences).order_by(t.silences.c.starts_at, t.silences.c.id)
    if now is not None and not expired:
        q = q.where(t.silences.c.ends_at > int(now))
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return [
        Silence(
            int(r["id"]),
            [parse_matcher(x, f"silence {r['id']}") for x in json.loads(r["matchers"])],
            int(r["starts_at"]),
            int(r["ends_at"]),
            str(r["comment"] or ""),
            str(r["created_by"] or ""),
        )
        for r in rows
    ]


def remove_silence(store: Store, silence_id: int) -> bool:
    """Delete a silence; False when there was none with that id."""
    with store.begin() as tx:
        res = tx.execute(delete(t.silences).where(t.silences.c.id == int(silence_id)))
    return bool(res.rowcount)


def silenced_by(silences: list[Silence], labels: dict[str, str], now: float) -> Silence | None:
    """The first silence that mutes these labels at ``now``."""
    return next((s for s in silences if s.mutes(labels, now)), None)
