"""channels.active_since and channel_stats.since: statistics count from the moment a
binding becomes active; a day seen only from then on says so

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Channels followed already have a position: no back-fill is needed.
    op.add_column("channels", sa.Column("active_since", sa.DateTime(timezone=True)))
    op.add_column("channel_stats", sa.Column("since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("channel_stats", "since")
    op.drop_column("channels", "active_since")
