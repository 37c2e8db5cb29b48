"""A connector's last measured capabilities, and when they were measured.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add several columns in one ALTER. Connectors saved
    # before have none measured (null), as a new one has.
    with op.batch_alter_table("connectors") as batch:
        batch.add_column(sa.Column("capabilities", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("capabilities_measured_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("connectors") as batch:
        batch.drop_column("capabilities_measured_at")
        batch.drop_column("capabilities")
