"""bindings(channel_id, id): a channel's bindings, newest first, for every binding status.

GET /channels/ finds each channel's current binding (its live one, else its newest) in
one lateral subquery per channel of the page (botmgr/channels/service.py). The only index
on channel_id was the partial unique one of live bindings, so a channel without a live
binding scanned every binding; with this index each channel is an index lookup.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_bindings_channel", "bindings", ["channel_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_bindings_channel", table_name="bindings")
