"""Due-time dispatch and the reconciler: posts.not_before (when a waiting post is due),
posts.dispatched_at (when its send task was last published; NULL while it waits), posts.attempts (the retry
count, kept in the row so a re-enqueued post keeps it), and deferred_jobs (any other
task that must wait longer than a short countdown).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("posts", sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "posts",
        sa.Column(
            "dispatched_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=True,
        ),
    )
    op.add_column("posts", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.create_index(
        "ix_posts_queued_due",
        "posts",
        ["not_before"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_table(
        "deferred_jobs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("retries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_deferred_jobs_due_at", "deferred_jobs", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_deferred_jobs_due_at", table_name="deferred_jobs")
    op.drop_table("deferred_jobs")
    op.drop_index("ix_posts_queued_due", table_name="posts")
    op.drop_column("posts", "attempts")
    op.drop_column("posts", "dispatched_at")
    op.drop_column("posts", "not_before")
