"""Store every secret field encrypted apart, not only the API key.

``api_key_encrypted`` (one Fernet token) becomes ``secrets_encrypted``, a JSON object of
dotted field path -> Fernet token; an existing key moves over as ``{"api_key": token}``
(tokens are copied as they are: no key is needed to migrate).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_connectors = sa.table(
    "connectors",
    sa.column("id", sa.Integer()),
    sa.column("api_key_encrypted", sa.Text()),
    sa.column("secrets_encrypted", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("connectors") as batch:
        batch.add_column(sa.Column("secrets_encrypted", sa.JSON(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_connectors.c.id, _connectors.c.api_key_encrypted)).all()
    for row in rows:
        moved = {"api_key": row.api_key_encrypted} if row.api_key_encrypted is not None else {}
        bind.execute(
            _connectors.update().where(_connectors.c.id == row.id).values(secrets_encrypted=moved)
        )
    with op.batch_alter_table("connectors") as batch:
        batch.alter_column("secrets_encrypted", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("api_key_encrypted")


def downgrade() -> None:
    with op.batch_alter_table("connectors") as batch:
        batch.add_column(sa.Column("api_key_encrypted", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_connectors.c.id, _connectors.c.secrets_encrypted)).all()
    for row in rows:
        bind.execute(
            _connectors.update()
            .where(_connectors.c.id == row.id)
            .values(api_key_encrypted=(row.secrets_encrypted or {}).get("api_key"))
        )
    with op.batch_alter_table("connectors") as batch:
        batch.drop_column("secrets_encrypted")
