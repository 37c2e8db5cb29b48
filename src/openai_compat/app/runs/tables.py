"""The tables of batch runs in the application: uploads, runs, and one row per result.

A result row is unique per ``(run_id, key)``: a row of the input is stored at most once,
whatever crashed or took over. ``line`` is the result exactly as the CLI writes it (one
JSON Lines line, without its line end), so a download is the CLI's output byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "RUN_STATUSES",
    "RunResultRow",
    "RunRow",
    "UploadRow",
]

# What the API shows; ``interrupted``: the instance running it stopped, it continues at the
# next start (or on another instance).
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
# A run in one of these is waiting for an instance, or held by one.
ACTIVE_STATUSES = ("queued", "running", "interrupted")
_BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class UploadRow(Base):
    """One uploaded dataset (the file itself is in the data directory)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    compressed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    size_bytes: Mapped[int] = mapped_column(_BIGINT, nullable=False)
    rows_estimate: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    columns: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    sample: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class RunRow(Base):
    """One batch run of a saved connector: what to run, its state, its figures, its lease."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    # The request as given (input, mapping, outputs, key, concurrency, rate, max_cost):
    # never a secret (the connector's secrets are read from the connector at each start).
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    output_names: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    total: Mapped[int | None] = mapped_column(_BIGINT, nullable=True)
    ok: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    skipped: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    requests: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    prompt_tokens: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    completion_tokens: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    total_tokens: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Seconds spent running (all attempts) and rows done in them, for rows_per_s / eta_s.
    active_s: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    # The last progress window: rows/s, requests/s, latency percentiles (for the chart).
    live: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # With a schema: the mode asked in, and rows by how their answer validated.
    schema_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    schema_valid_first: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    schema_valid_reasked: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    schema_invalid: Mapped[int] = mapped_column(_BIGINT, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class RunResultRow(Base):
    """One row's result; ``seq`` orders them as they were stored."""

    __tablename__ = "run_results"
    __table_args__ = (
        UniqueConstraint("run_id", "key", name="uq_run_results_run_key"),
        Index("ix_run_results_run_seq", "run_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    row_index: Mapped[int] = mapped_column(_BIGINT, nullable=False)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    line: Mapped[str] = mapped_column(Text, nullable=False)
