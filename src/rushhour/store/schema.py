"""Table definitions: the single description that migrations and queries share."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("labels", Text, nullable=False, default="{}"),
    Column("bucket_seconds", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

buckets = Table(
    "buckets",
    metadata,
    Column("series_id", Integer, ForeignKey("series.id"), primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("value", Float, nullable=False),
    Column("late_updates", Integer, nullable=False, default=0),
)

scores = Table(
    "scores",
    metadata,
    Column("series_id", Integer, ForeignKey("series.id"), primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("detector", String(64), primary_key=True),
    Column("score", Float, nullable=False),
    Column("expected", Float),
    Column("deviation", Float),
    Column("explanation", Text),
)

anomalies = Table(
    "anomalies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("series_id", Integer, ForeignKey("series.id"), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("detector", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("expected", Float),
    Column("deviation", Float),
    Column("sigma", Float),
    Column("score", Float),
    Column("direction", String(8), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("detected_at", BigInteger, nullable=False),
    Column("explanation", Text),
    UniqueConstraint("series_id", "start", "detector", name="uq_anomaly_bucket"),
)
Index("ix_anomalies_start", anomalies.c.start)

cutoffs = Table(
    "cutoffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("series_id", Integer, ForeignKey("series.id"), nullable=False),
    Column("model", String(64), nullable=False),
    Column("update_time", BigInteger, nullable=False),
    Column("score_cutoff", Float, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("series_id", Integer, ForeignKey("series.id")),
    Column("version", Integer, nullable=False),
    Column("trained_at", BigInteger, nullable=False),
    Column("params", Text, nullable=False, default="{}"),
    Column("artifact", LargeBinary),
    Column("artifact_uri", String(1024)),
    UniqueConstraint("name", "version", name="uq_model_version"),
)
#: every column of ``models`` but the artifact bytes (listings and lookups that do not load it)
MODEL_HEAD = [c for c in models.c if c.name != "artifact"]
# migration 0003: a series' newest model of a kind is one index probe
Index("ix_models_series", models.c.series_id, models.c.kind, models.c.trained_at)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("position", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# -- notify (migration 0002) -----------------------------------------------------------------------
# One row per delivery of one alert (or alert group) status to one channel. ``dedupe_key`` makes each
# delivery idempotent: enqueueing the same alert+status+channel twice is a no-op.
alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("alert_id", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("image", LargeBinary),
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float, nullable=False, default=0.0),
    Column("progress", Text, nullable=False, default="{}"),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float),
    UniqueConstraint("dedupe_key", name="uq_outbox_dedupe"),
)
Index("ix_outbox_due", alert_outbox.c.state, alert_outbox.c.next_attempt_at)
Index("ix_outbox_alert", alert_outbox.c.alert_id)
# migration 0003: GET /alerts walks the outbox newest first and counts its groups without the payloads
Index("ix_outbox_groups", alert_outbox.c.alert_id, alert_outbox.c.status)
Index(
    "ix_outbox_created",
    alert_outbox.c.created_at,
    alert_outbox.c.id,
    alert_outbox.c.alert_id,
    alert_outbox.c.status,
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", Text, nullable=False),
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_by", String(200), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_silences_ends", silences.c.ends_at)
