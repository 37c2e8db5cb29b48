"""OpenAI's Files and Batches API: the files, and the batches (each one a run).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "openai_files",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False, index=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("bytes", _BIGINT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("upload_id", sa.String(32), nullable=True),
        sa.Column("batch_id", sa.String(40), nullable=True, index=True),
        sa.Column("kind", sa.String(8), nullable=True),
    )
    op.create_table(
        "openai_batches",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=True, index=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("input_file_id", sa.String(40), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(8), nullable=False),
        sa.Column("batch_metadata", sa.JSON(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("total", _BIGINT, nullable=False),
        sa.Column("output_file_id", sa.String(40), nullable=True),
        sa.Column("error_file_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        *(
            _at(f"{event}_at")
            for event in (
                "in_progress",
                "finalizing",
                "completed",
                "failed",
                "expired",
                "cancelling",
                "cancelled",
            )
        ),
    )


def downgrade() -> None:
    op.drop_table("openai_batches")
    op.drop_table("openai_files")
