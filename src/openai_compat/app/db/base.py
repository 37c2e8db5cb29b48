"""The declarative base every table of the application is declared on (one metadata)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

__all__ = ["Base"]


class Base(DeclarativeBase):
    """Declarative base of the application's tables."""
