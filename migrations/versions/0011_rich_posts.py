"""Rich posts (issue 16): scheduling, fan-out groups, options, media, edit/delete/pin.

posts gains ``group_id`` (a fan-out), ``send_at``, ``silent``, ``disable_preview``,
``buttons``, ``delete_after``, ``media_ids``, ``item_random_ids`` (an album's random ids),
``message_ids``, ``pinned``, ``edited_at``, ``deleted_at``; ``media`` keeps uploaded files
(bytea) for every worker; ``post_actions`` the follow-up tasks (edit, delete, pin) asked for. The post status is a plain string column (no native enum, no
check constraint), so its new values ``cancelled`` and ``deleted`` need no change here.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMPTY = sa.text("'[]'")


def upgrade() -> None:
    op.add_column("posts", sa.Column("group_id", sa.String(36), nullable=True))
    op.create_index("ix_posts_group_id", "posts", ["group_id"])
    op.add_column("posts", sa.Column("send_at", sa.DateTime(timezone=True), nullable=True))
    for flag in ("silent", "disable_preview", "pinned"):
        op.add_column(
            "posts", sa.Column(flag, sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    for listed in ("buttons", "media_ids", "item_random_ids", "message_ids"):
        op.add_column("posts", sa.Column(listed, sa.JSON(), server_default=_EMPTY, nullable=False))
    op.add_column("posts", sa.Column("delete_after", sa.Integer(), nullable=True))
    op.add_column("posts", sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("posts", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "media",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("mime", sa.String(127), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_media_sha256", "media", ["sha256"])
    op.create_table(
        "post_actions",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column(
            "post_id", sa.BigInteger(), sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_post_actions_post_id", "post_actions", ["post_id"])


def downgrade() -> None:
    op.drop_index("ix_post_actions_post_id", table_name="post_actions")
    op.drop_table("post_actions")
    op.drop_index("ix_media_sha256", table_name="media")
    op.drop_table("media")
    for column in (
        "deleted_at",
        "edited_at",
        "delete_after",
        "message_ids",
        "item_random_ids",
        "media_ids",
        "buttons",
        "pinned",
        "disable_preview",
        "silent",
        "send_at",
    ):
        op.drop_column("posts", column)
    op.drop_index("ix_posts_group_id", table_name="posts")
    op.drop_column("posts", "group_id")
