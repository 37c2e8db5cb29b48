"""The database: the engine of the embedded SQLite file or PostgreSQL, and the schema
brought up to date at every start by the Alembic migrations shipped in ``migrations``
(``database``); the declarative base every room declares its tables on (``base``).
"""

from .base import Base
from .database import database_url, describe_url, migrate, open_engine

__all__ = ["Base", "database_url", "describe_url", "migrate", "open_engine"]
