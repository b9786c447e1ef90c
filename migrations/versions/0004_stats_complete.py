"""channel_stats.complete and channels.feed_gap: a day whose update stream had a gap the
collector could not read back is marked incomplete instead of silently undercounted

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows collected before this revision had no way to know: they stay "complete".
    op.add_column(
        "channel_stats",
        sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "channels",
        sa.Column("feed_gap", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("channels", "feed_gap")
    op.drop_column("channel_stats", "complete")
