"""Alerts list: ``GET /alerts`` walks the outbox newest first (``ix_outbox_created``) and counts its
(alert, status) groups over an index that covers them (``ix_outbox_groups``), never the payloads.

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
    op.create_index("ix_outbox_created", "alert_outbox", ["created_at", "id", "alert_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_outbox_created", "alert_outbox")
    op.drop_index("ix_outbox_groups", "alert_outbox")
