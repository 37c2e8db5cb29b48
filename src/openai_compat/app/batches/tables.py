"""The tables of OpenAI's Files and Batches API: the files, and the batches.

An input file is an upload of the run engine (``upload_id``: its bytes are the upload's
file, kept as every upload is); an output or error file is a view of its batch's stored
results (``batch_id`` and ``kind``), read from the run's result rows when downloaded. A
batch holds what OpenAI shows of it; the run it is (``run_id``) holds its progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base

__all__ = ["BatchRow", "FileRow"]

_BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class FileRow(Base):
    """One file of the Files API: an uploaded batch input, or a batch's output or errors."""

    __tablename__ = "openai_files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    bytes: Mapped[int] = mapped_column(_BIGINT, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
    upload_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    kind: Mapped[str | None] = mapped_column(String(8), nullable=True)


class BatchRow(Base):
    """One batch of the Batches API, and the run that executes it."""

    __tablename__ = "openai_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    connector_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_file_id: Mapped[str] = mapped_column(String(40), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(64), nullable=False)
    completion_window: Mapped[str] = mapped_column(String(8), nullable=False)
    batch_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    model: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    errors: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    total: Mapped[int] = mapped_column(_BIGINT, nullable=False)
    output_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    in_progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finalizing_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelling_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
