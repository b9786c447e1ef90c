"""bots.token_tail: the end of the token a mask shows, so listing bots needs no decryption

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and not back-filled (that needs the secret key): rows stored before this
    # revision are masked by decrypting their token, and get a tail when it is next stored.
    op.add_column("bots", sa.Column("token_tail", sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column("bots", "token_tail")
