"""Batch runs in the application: uploads, runs, their results.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("compressed", sa.Boolean(), nullable=False),
        sa.Column("size_bytes", _BIGINT, nullable=False),
        sa.Column("rows_estimate", _BIGINT, nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("sample", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("connector_id", sa.Integer(), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("output_names", sa.JSON(), nullable=False),
        sa.Column("total", _BIGINT, nullable=True),
        sa.Column("ok", _BIGINT, nullable=False),
        sa.Column("failed", _BIGINT, nullable=False),
        sa.Column("skipped", _BIGINT, nullable=False),
        sa.Column("requests", _BIGINT, nullable=False),
        sa.Column("prompt_tokens", _BIGINT, nullable=False),
        sa.Column("completion_tokens", _BIGINT, nullable=False),
        sa.Column("total_tokens", _BIGINT, nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("active_s", sa.Float(), nullable=False),
        sa.Column("live", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "run_results",
        sa.Column("seq", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("row_index", _BIGINT, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.UniqueConstraint("run_id", "key", name="uq_run_results_run_key"),
    )
    op.create_index("ix_run_results_run_seq", "run_results", ["run_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_run_results_run_seq", "run_results")
    op.drop_table("run_results")
    op.drop_table("runs")
    op.drop_table("uploads")
