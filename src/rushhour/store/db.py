"""One store interface over SQLite and PostgreSQL.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> store = open_store(f"sqlite:///{d / 'x.db'}")
>>> with store.begin() as tx:
...     ref = store.ensure_series(tx, "api", {"region": "eu"}, 60)
...     store.write_buckets(tx, ref.id, [0, 60], [5.0, 7.0])
>>> store.series_summary()[0]["total"]
12.0
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from rushhour.errors import StoreError
from rushhour.settings import mask_url
from rushhour.store import schema as t


@dataclass(frozen=True)
class SeriesRef:
    """A stored series: its id, canonical key, name, labels and bucket width."""

    id: int
    key: str
    name: str
    labels: dict[str, str]
    bucket_seconds: int


@dataclass(frozen=True)
class AnomalyRecord:
    """One anomalous bucket as a detector reported it."""

    series_id: int
    start: int
    detector: str
    value: float
    expected: float | None
    deviation: float | None
    sigma: float | None
    score: float | None
    direction: str
    severity: str
    detected_at: int
    explanation: str | None = None


def series_key(name: str, labels: Mapping[str, str]) -> str:
    """Canonical identity of a series: ``name{k=v,...}`` with labels sorted.

    >>> series_key("requests", {"status": "ok", "action": "ACCEPT"})
    'requests{action=ACCEPT,status=ok}'
    """
    if not labels:
        return name
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{name}{{{inner}}}"


def open_store(url: str) -> Store:
    """Open (and migrate) the store at ``url``."""
    return Store.open(url)


class Store:
    """Series, buckets, scores, anomalies, cut-offs, models and checkpoints behind one interface."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._series_cache: dict[str, SeriesRef] = {}

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str) -> Store:
        try:
            engine = _engine(url)
            store = cls(engine)
            store.migrate()
        except (ArgumentError, SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open store {mask_url(url)}: {_first_line(exc)}") from exc
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        cfg = Config()
        cfg.set_main_option("script_location", "rushhour.store:migrations")
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: everything written inside commits together or not at all."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"store write failed: {_first_line(exc)}") from exc

    # -- series ---------------------------------------------------------------------------------
    def ensure_series(
        self, conn: Connection, name: str, labels: Mapping[str, str], bucket_seconds: int
    ) -> SeriesRef:
        """The series ``name{labels}``, created on first sight."""
        key = series_key(name, labels)
        cached = self._series_cache.get(key)
        if cached is not None:
            return cached
        row = conn.execute(select(t.series).where(t.series.c.key == key)).mappings().first()
        if row is None:
            self._upsert(
                conn,
                t.series,
                [
                    {
                        "key": key,
                        "name": name,
                        "labels": json.dumps(dict(labels), sort_keys=True),
                        "bucket_seconds": bucket_seconds,
                        "created_at": int(time.time()),
                    }
                ],
                keys=["key"],
                update=[],
            )
            row = conn.execute(select(t.series).where(t.series.c.key == key)).mappings().one()
        ref = _series_ref(row)
        self._series_cache[key] = ref
        return ref

    def all_series(self) -> list[SeriesRef]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.series).order_by(t.series.c.id)).mappings().all()
        return [_series_ref(r) for r in rows]

    def series_summary(self) -> list[dict[str, Any]]:
        """Every series with its labels, first and last bucket, bucket count and total value."""
        b = t.buckets
        q = (
            select(
                t.series,
                func.min(b.c.start).label("first"),
                func.max(b.c.start).label("last"),
                func.count(b.c.start).label("buckets"),
                func.coalesce(func.sum(b.c.value), 0.0).label("total"),
            )
            .select_from(t.series.outerjoin(b, b.c.series_id == t.series.c.id))
            .group_by(t.series.c.id)
            .order_by(t.series.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        out = []
        for r in rows:
            d = dict(r)
            d["labels"] = json.loads(d["labels"])
            d["total"] = float(d["total"])
            out.append(d)
        return out

    # -- buckets and scores ---------------------------------------------------------------------
    def write_buckets(
        self, conn: Connection, series_id: int, starts: Sequence[int], values: Sequence[float]
    ) -> None:
        """Insert or overwrite bucket values (a late record rewrites its bucket)."""
        rows = [
            {"series_id": series_id, "start": int(s), "value": float(v)}
            for s, v in zip(starts, values, strict=True)
        ]
        if rows:
            self._upsert(conn, t.buckets, rows, keys=["series_id", "start"], update=["value"])

    def add_to_buckets(self, conn: Connection, rows: Sequence[tuple[int, int, float, int]]) -> None:
        """Add ``(series_id, start, delta, late)`` to stored buckets, creating them at 0 when new.

        ``late`` (``1``/``0``) marks updates to buckets that had already closed; they are counted per
        bucket. One prepared statement through the driver for the whole batch (no per-row SQL
        compiling).
        """
        if not rows:
            return
        params = [(int(sid), int(st), float(v), int(late)) for sid, st, v, late in rows]
        self._bulk(conn, _ADD_TO_BUCKETS, params)

    def _bulk(self, conn: Connection, sql: str, params: list[tuple[Any, ...]]) -> None:
        """``executemany`` of a fixed statement through the driver, placeholders per dialect."""
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        conn.exec_driver_sql(sql, params)

    def buckets_since(self, start: int) -> dict[int, dict[int, float]]:
        """Every stored bucket starting at or after ``start``, per series id (open buckets on restart)."""
        q = select(t.buckets.c.series_id, t.buckets.c.start, t.buckets.c.value).where(
            t.buckets.c.start >= start
        )
        out: dict[int, dict[int, float]] = {}
        with self.engine.connect() as conn:
            for sid, st, v in conn.execute(q):
                out.setdefault(int(sid), {})[int(st)] = float(v)
        return out

    def bucket_arrays(
        self, since: int, until: int, series_ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stored buckets with ``since <= start < until`` of every series (or of ``series_ids``) in one
        query, as arrays (series id, start, value) ordered by series and start."""
        b = t.buckets.c
        q = select(b.series_id, b.start, b.value).where((b.start >= since) & (b.start < until))
        if series_ids is not None:
            q = q.where(b.series_id.in_(list(series_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(b.series_id, b.start)).all()
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        sid, start, value = zip(*rows, strict=True)
        return (
            np.asarray(sid, dtype=np.int64),
            np.asarray(start, dtype=np.int64),
            np.asarray(value, dtype=float),
        )

    def first_buckets(self) -> dict[int, int]:
        """The first stored bucket start of every series."""
        q = select(t.buckets.c.series_id, func.min(t.buckets.c.start)).group_by(
            t.buckets.c.series_id
        )
        with self.engine.connect() as conn:
            return {int(sid): int(st) for sid, st in conn.execute(q)}

    def last_buckets(self, ids: list[int] | None = None) -> dict[int, int]:
        """The last stored bucket start of every series (or of ``ids``) that has data.

        One correlated ``max`` per series, which SQLite and PostgreSQL answer from the primary key's
        index in a single probe; a ``GROUP BY`` would read every bucket of every series."""
        if ids is not None and not ids:
            return {}
        b = t.buckets
        newest = select(func.max(b.c.start)).where(b.c.series_id == t.series.c.id).scalar_subquery()
        q = select(t.series.c.id, newest)
        if ids is not None:
            q = q.where(t.series.c.id.in_(ids))
        with self.engine.connect() as conn:
            return {int(sid): int(st) for sid, st in conn.execute(q) if st is not None}

    def late_updates(self) -> int:
        """How many late updates closed buckets received, in all."""
        q = select(func.coalesce(func.sum(t.buckets.c.late_updates), 0))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def series_by_id(self) -> dict[int, SeriesRef]:
        return {ref.id: ref for ref in self.all_series()}

    def read_buckets(
        self, series_id: int, start: int | None = None, end: int | None = None
    ) -> pd.Series:
        """Stored values of a series in ``[start, end)`` as a UTC-indexed float series."""
        q = select(t.buckets.c.start, t.buckets.c.value).where(t.buckets.c.series_id == series_id)
        if start is not None:
            q = q.where(t.buckets.c.start >= start)
        if end is not None:
            q = q.where(t.buckets.c.start < end)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.buckets.c.start)).all()
        index = pd.to_datetime([r[0] for r in rows], unit="s", utc=True)
        return pd.Series([float(r[1]) for r in rows], index=index, dtype=float, name="value")

    def write_scores(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert or overwrite scores: mappings with the score columns, or tuples in
        :data:`SCORE_COLUMNS` order (the live pipeline's path: one prepared statement)."""
        if not rows:
            return
        params = [
            tuple(r[c] for c in SCORE_COLUMNS) if isinstance(r, Mapping) else tuple(r) for r in rows
        ]
        self._bulk(conn, _WRITE_SCORES, params)

    # -- anomalies ------------------------------------------------------------------------------
    def add_anomalies(self, conn: Connection, records: Sequence[AnomalyRecord]) -> int:
        """Record many anomalies, each once; returns how many were new."""
        if not records:
            return 0
        count = select(func.count()).select_from(t.anomalies)
        before = conn.execute(count).scalar_one()
        # one prepared statement through the driver (no per-row parameter compiling)
        self._bulk(conn, _ADD_ANOMALIES, list(map(_anomaly_row, records)))
        return int(conn.execute(count).scalar_one() - before)

    def count_anomalies(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.anomalies)).scalar_one())

    def anomalies(self, limit: int = 100, series_id: int | None = None) -> list[dict[str, Any]]:
        q = select(t.anomalies).order_by(t.anomalies.c.start.desc()).limit(limit)
        if series_id is not None:
            q = q.where(t.anomalies.c.series_id == series_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint(self, source: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.checkpoints.c.position).where(t.checkpoints.c.source == source)
            ).first()
        return None if row is None else dict(json.loads(row[0]))

    def checkpoint_in(self, conn: Connection, source: str) -> dict[str, Any] | None:
        """A checkpoint read inside a transaction (to test-and-set with the data it guards)."""
        row = conn.execute(
            select(t.checkpoints.c.position).where(t.checkpoints.c.source == source)
        ).first()
        return None if row is None else dict(json.loads(row[0]))

    def checkpoints_with_prefix(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every checkpoint whose name starts with ``prefix``, by name."""
        q = select(t.checkpoints.c.source, t.checkpoints.c.position).where(
            t.checkpoints.c.source.startswith(prefix, autoescape=True)
        )
        with self.engine.connect() as conn:
            return {str(name): dict(json.loads(pos)) for name, pos in conn.execute(q)}

    def set_checkpoints(self, conn: Connection, positions: Mapping[str, Mapping[str, Any]]) -> None:
        """Write many checkpoints in one statement."""
        if not positions:
            return
        now = int(time.time())
        self._upsert(
            conn,
            t.checkpoints,
            [
                {"source": name, "position": json.dumps(dict(pos)), "updated_at": now}
                for name, pos in positions.items()
            ],
            keys=["source"],
            update=["position", "updated_at"],
        )

    def set_checkpoint(self, conn: Connection, source: str, position: Mapping[str, Any]) -> None:
        self.set_checkpoints(conn, {source: position})

    # -- models ---------------------------------------------------------------------------------
    def save_model(
        self,
        name: str,
        kind: str,
        artifact: bytes,
        *,
        series_id: int | None = None,
        params: Mapping[str, Any] | None = None,
        trained_at: int | None = None,
    ) -> int:
        """Store a new version of model ``name``; returns the version number."""
        with self.begin() as conn:
            latest = conn.execute(
                select(func.max(t.models.c.version)).where(t.models.c.name == name)
            ).scalar_one()
            version = int(latest or 0) + 1
            conn.execute(
                t.models.insert().values(
                    name=name,
                    kind=kind,
                    series_id=series_id,
                    version=version,
                    trained_at=int(trained_at if trained_at is not None else time.time()),
                    params=json.dumps(dict(params or {}), sort_keys=True),
                    artifact=artifact,
                )
            )
        return version

    def load_model(
        self, name: str, version: int | None = None, *, artifact: bool = True
    ) -> dict[str, Any] | None:
        """The newest (or the given) version of model ``name``, with its artifact bytes unless
        ``artifact`` is False (then :meth:`model_artifact` reads them when they are needed)."""
        cols = t.models.c if artifact else t.MODEL_HEAD
        q = select(*cols).where(t.models.c.name == name)
        q = (
            q.where(t.models.c.version == version)
            if version
            else q.order_by(t.models.c.version.desc())
        )
        with self.engine.connect() as conn:
            row = conn.execute(q.limit(1)).mappings().first()
        return None if row is None else dict(row)

    def model_artifact(self, name: str, version: int) -> bytes:
        """The artifact bytes of one model version (b"" when it has none)."""
        m = t.models.c
        q = select(m.artifact).where((m.name == name) & (m.version == version))
        with self.engine.connect() as conn:
            return bytes(conn.execute(q).scalar_one_or_none() or b"")

    def latest_models(self, prefix: str) -> list[dict[str, Any]]:
        """The newest version of every model whose name starts with ``prefix``, with its artifact
        bytes, in one query (ordered by name)."""
        m = t.models.c
        newest = (
            select(m.name, func.max(m.version).label("version"))
            .where(m.name.startswith(prefix, autoescape=True))
            .group_by(m.name)
            .subquery()
        )
        q = (
            select(t.models)
            .join(newest, (m.name == newest.c.name) & (m.version == newest.c.version))
            .order_by(m.name)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def list_models(self) -> list[dict[str, Any]]:
        cols = t.MODEL_HEAD
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*cols).order_by(t.models.c.name, t.models.c.version)
            ).mappings()
            return [dict(r) for r in rows]

    # -- helpers --------------------------------------------------------------------------------
    def _upsert(
        self,
        conn: Connection,
        table: Any,
        rows: list[dict[str, Any]],
        *,
        keys: list[str],
        update: list[str],
    ) -> None:
        ins: Any
        if self.dialect == "postgresql":
            ins = postgresql.insert(table)
        elif self.dialect == "sqlite":
            ins = sqlite.insert(table)
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise StoreError(f"unsupported database {self.dialect!r}")
        if update:
            stmt = ins.on_conflict_do_update(
                index_elements=keys, set_={c: ins.excluded[c] for c in update}
            )
        else:
            stmt = ins.on_conflict_do_nothing(index_elements=keys)
        conn.execute(stmt, rows)


SCORE_COLUMNS = ("series_id", "start", "detector", "score", "expected", "deviation", "explanation")

_ADD_TO_BUCKETS = (
    "INSERT INTO buckets (series_id, start, value, late_updates) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (series_id, start) DO UPDATE SET value = buckets.value + excluded.value, "
    "late_updates = buckets.late_updates + excluded.late_updates"
)
_ANOMALY_COLUMNS = tuple(f.name for f in fields(AnomalyRecord))
_ADD_ANOMALIES = (
    f"INSERT INTO anomalies ({', '.join(_ANOMALY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_ANOMALY_COLUMNS))}) "
    "ON CONFLICT (series_id, start, detector) DO NOTHING"
)
_anomaly_row = attrgetter(*_ANOMALY_COLUMNS)  # a record's values in _ANOMALY_COLUMNS order
_WRITE_SCORES = (
    f"INSERT INTO scores ({', '.join(SCORE_COLUMNS)}) VALUES ({', '.join('?' * 7)}) "
    "ON CONFLICT (series_id, start, detector) DO UPDATE SET score = excluded.score, "
    "expected = excluded.expected, deviation = excluded.deviation, "
    "explanation = excluded.explanation"
)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _series_ref(row: Any) -> SeriesRef:
    return SeriesRef(
        id=int(row["id"]),
        key=str(row["key"]),
        name=str(row["name"]),
        labels=dict(json.loads(row["labels"])),
        bucket_seconds=int(row["bucket_seconds"]),
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
