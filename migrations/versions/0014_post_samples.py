"""Post analytics (issue 17): ``post_samples`` keeps each channel post's views, forwards
and reactions at fixed ages (1 h, 24 h, 48 h after publication by default), pending
until due and read per channel in batches (botmgr/stats/samples.py).

Revision ID: 0014
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "post_samples",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "channel_id",
            sa.BigInteger(),
            sa.ForeignKey("channels.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "post_id",
            sa.BigInteger(),
            sa.ForeignKey("posts.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("published_at", _TS, nullable=False),
        sa.Column("age_hours", sa.Integer(), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("dispatched_at", _TS, nullable=True),
        sa.Column("taken_at", _TS, nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.Column("forwards", sa.Integer(), nullable=True),
        sa.Column("reactions", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("channel_id", "message_id", "age_hours"),
    )
    op.create_index(
        "ix_post_samples_pending_due",
        "post_samples",
        ["due_at"],
        postgresql_where=sa.text("taken_at IS NULL"),
    )
    op.create_index(
        "ix_post_samples_channel_published", "post_samples", ["channel_id", "published_at"]
    )
    op.create_index("ix_post_samples_post_id", "post_samples", ["post_id"])


def downgrade() -> None:
    op.drop_table("post_samples")
