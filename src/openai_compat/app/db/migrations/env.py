"""Alembic environment: runs on the connection the application hands over."""

from __future__ import annotations

from alembic import context

# Importing the rooms declares their tables on the one metadata the migrations compare with.
import openai_compat.app.batches.tables
import openai_compat.app.connectors
import openai_compat.app.runs  # noqa: F401
from openai_compat.app.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the migrations through openai_compat.app.db.migrate (or `openai-compat "
        "serve`), which passes the database connection"
    )
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
