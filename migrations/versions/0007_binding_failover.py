"""bindings.cause (why an invalid binding is invalid), binding_history (failover) and
posts.uncertain_bot_id (the bot of a send whose outcome is unknown)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bindings", sa.Column("cause", sa.String(16), nullable=True))
    op.add_column("posts", sa.Column("uncertain_bot_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "binding_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "binding_id",
            sa.BigInteger(),
            sa.ForeignKey("bindings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_bot_id", sa.BigInteger(), sa.ForeignKey("bots.id"), nullable=True),
        sa.Column("to_bot_id", sa.BigInteger(), sa.ForeignKey("bots.id"), nullable=True),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_binding_history_binding_id", "binding_history", ["binding_id"])


def downgrade() -> None:
    op.drop_index("ix_binding_history_binding_id", table_name="binding_history")
    op.drop_table("binding_history")
    op.drop_column("posts", "uncertain_bot_id")
    op.drop_column("bindings", "cause")
