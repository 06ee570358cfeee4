"""Indexes for the dashboard at scale.

``GET /alerts`` walks the outbox newest first (``ix_outbox_created``) and counts its (alert, status)
groups over an index that covers them (``ix_outbox_groups``), never the payloads; a series' newest
model of a kind (``GET /forecast``, ``POST /predict``) is one probe of ``ix_models_series``, not a scan
of every stored version.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_groups", "alert_outbox", ["alert_id", "status"])
    op.create_index("ix_models_series", "models", ["series_id", "kind", "trained_at"])
    op.create_index("ix_outbox_created", "alert_outbox", ["created_at", "id", "alert_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_models_series", "models")
    op.drop_index("ix_outbox_created", "alert_outbox")
    op.drop_index("ix_outbox_groups", "alert_outbox")
