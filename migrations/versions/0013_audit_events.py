"""The audit log (issue 17): ``audit_events``, one row per change an operator (or the
service) made — who, from which address, what, to which object — written in the
change's own transaction (botmgr/audit/).

Revision ID: 0013
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
    )
    op.create_index(
        "ix_audit_events_object", "audit_events", ["object_type", "object_id", "id"]
    )
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    for index in (
        "ix_audit_events_at",
        "ix_audit_events_actor",
        "ix_audit_events_action",
        "ix_audit_events_object",
    ):
        op.drop_index(index, table_name="audit_events")
    op.drop_table("audit_events")
