"""A structured run's counts: the mode it asked in and its rows by how their answer validated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COUNTS = ("schema_valid_first", "schema_valid_reasked", "schema_invalid")


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add several columns in one ALTER; PostgreSQL alters in
    # place. Existing runs count 0 (their lines still say how each row validated).
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("schema_mode", sa.String(16), nullable=True))
        for name in _COUNTS:
            batch.add_column(sa.Column(name, _BIGINT, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in (*reversed(_COUNTS), "schema_mode"):
            batch.drop_column(name)
