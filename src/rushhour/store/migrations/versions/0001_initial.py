"""Initial schema: series, buckets, scores, anomalies, cut-offs, models, checkpoints.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(512), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("bucket_seconds", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "buckets",
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("late_updates", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "scores",
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("detector", sa.String(64), primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("expected", sa.Float),
        sa.Column("deviation", sa.Float),
        sa.Column("explanation", sa.Text),
    )
    op.create_table(
        "anomalies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("expected", sa.Float),
        sa.Column("deviation", sa.Float),
        sa.Column("sigma", sa.Float),
        sa.Column("score", sa.Float),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("detected_at", sa.BigInteger, nullable=False),
        sa.Column("explanation", sa.Text),
        sa.UniqueConstraint("series_id", "start", "detector", name="uq_anomaly_bucket"),
    )
    op.create_index("ix_anomalies_start", "anomalies", ["start"])
    op.create_table(
        "cutoffs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("update_time", sa.BigInteger, nullable=False),
        sa.Column("score_cutoff", sa.Float, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id")),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("trained_at", sa.BigInteger, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("artifact", sa.LargeBinary),
        sa.Column("artifact_uri", sa.String(1024)),
        sa.UniqueConstraint("name", "version", name="uq_model_version"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("position", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("checkpoints", "models", "cutoffs", "anomalies", "scores", "buckets", "series"):
        op.drop_table(name)
