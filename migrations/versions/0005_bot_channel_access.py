"""bot_channel_access (id + access_hash per bot and channel) and bots.login_not_before

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Telegram asks clients to persist id + access_hash per account instead of resolving
    # usernames again (core.telegram.org/api/peers): one row per bot and channel.
    op.create_table(
        "bot_channel_access",
        sa.Column("bot_id", sa.BigInteger(), sa.ForeignKey("bots.id", ondelete="CASCADE")),
        sa.Column("tg_channel_id", sa.BigInteger()),
        # The Telegram bot the hash was issued to (hashes are per account).
        sa.Column("tg_bot_id", sa.BigInteger(), nullable=False),
        sa.Column("access_hash", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("bot_id", "tg_channel_id"),
    )
    # A login FLOOD_WAIT outlives the task and the process that earned it.
    op.add_column("bots", sa.Column("login_not_before", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("bots", "login_not_before")
    op.drop_table("bot_channel_access")
