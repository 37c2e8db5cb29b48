"""The saved connectors: one SQLAlchemy table, and the repository that reads and writes it.

The configuration is stored without its secrets (the fields the spec marks
``multiwoven_secret``: the API key, secret headers, the proxy); they are stored apart, each
value encrypted on its own (``KeyCipher``), as a JSON object of dotted path -> token.
Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Integer, String, bindparam, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from ...errors import OpenAICompatError
from ..db import Base

__all__ = [
    "CONNECTOR_NAME",
    "ConnectorPage",
    "ConnectorRow",
    "ConnectorStore",
    "StoredConnector",
    "Unstorable",
]

CONNECTOR_NAME = "openai_compatible"
_T = TypeVar("_T")


class Unstorable(OpenAICompatError):
    """The database refused the values (text it cannot hold); nothing was written."""


@contextmanager
def _refusals() -> Iterator[None]:
    # The driver's UTF-8 encoding (a lone surrogate) and the database's own refusal of a
    # value (PostgreSQL: a NUL byte, an invalid escape) say the same: these values cannot
    # be stored. Other database errors (unreachable, locked) stay what they are.
    try:
        yield
    except UnicodeError:
        raise Unstorable("holds text that is not valid Unicode") from None
    except DataError:
        raise Unstorable("holds a value the database does not accept as text") from None


class ConnectorRow(Base):
    """One saved connector (the table ``connectors``)."""

    __tablename__ = "connectors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    connector_name: Mapped[str] = mapped_column(String(64), nullable=False)
    configuration: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    secrets_encrypted: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The last measured capabilities (`measured.MeasuredCapabilities`); null until measured,
    # and again once the configuration they were measured with changes.
    capabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    capabilities_measured_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


_TABLE = ConnectorRow.__table__
# Built once: building and hashing a statement costs more than running it on SQLite.
_BY_ID = select(_TABLE).where(_TABLE.c.id == bindparam("id"))
_VERSION_BY_ID = select(_TABLE.c.created_at, _TABLE.c.updated_at).where(
    _TABLE.c.id == bindparam("id")
)


@dataclass(frozen=True)
class StoredConnector:
    """A saved connector as read from the store (its secrets still encrypted)."""

    id: int
    name: str
    connector_name: str
    configuration: dict[str, Any]
    secrets_encrypted: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ConnectorRow | Any) -> StoredConnector:
        """From an ORM ``ConnectorRow`` or a Core result row of the ``connectors`` table."""
        return cls(
            id=row.id,
            name=row.name,
            connector_name=row.connector_name,
            configuration=dict(row.configuration),
            secrets_encrypted=dict(row.secrets_encrypted or {}),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class ConnectorPage:
    """One page of the saved connectors, by id; ``more`` when connectors follow it."""

    items: list[StoredConnector]
    total: int
    more: bool


_PAGE = (
    select(_TABLE)
    .where(_TABLE.c.id > bindparam("after"))
    .order_by(_TABLE.c.id)
    .limit(bindparam("fetch"))
)
_COUNT = select(func.count()).select_from(_TABLE)


# The id column is an ``Integer``: 32 bits on PostgreSQL (a larger bound parameter is an
# error there, not a miss), 64 on SQLite.
_ID_LIMITS = {"postgresql": 2**31 - 1}
_MAX_ID = 2**63 - 1


def _now() -> datetime:
    return datetime.now(UTC)


class ConnectorStore:
    """Create, read, update and delete saved connectors (synchronous; short transactions)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._version_sql = _VERSION_BY_ID.compile(dialect=engine.dialect)
        # The largest id the table can hold: a larger one is not looked up, just not found.
        self.max_id = _ID_LIMITS.get(engine.dialect.name, _MAX_ID)

    def _session(self) -> Session:
        return self._sessions()

    # Reads use Core statements, not the ORM: execute_model reads one row per request, and
    # a Session with its identity map costs several times the query itself.
    def list(self) -> list[StoredConnector]:
        """Every saved connector, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(_TABLE).order_by(_TABLE.c.id))
            return [StoredConnector.from_row(row) for row in rows]

    def page(self, after: int, limit: int) -> ConnectorPage:
        """Up to ``limit`` connectors with an id above ``after``, oldest first, and the total.

        Keyset paging: a connector created or deleted meanwhile never shifts the others,
        so paging to the end returns every connector that stayed, exactly once.
        """
        with self.engine.connect() as connection:
            rows = (
                connection.execute(_PAGE, {"after": after, "fetch": limit + 1}).all()
                if after < self.max_id
                else []
            )
            total = connection.execute(_COUNT).scalar_one()
        items = [StoredConnector.from_row(row) for row in rows[:limit]]
        return ConnectorPage(items, int(total), more=len(rows) > limit)

    def get(self, connector_id: int) -> StoredConnector | None:
        """The connector with this id, or None."""
        if connector_id > self.max_id:
            return None
        with self.engine.connect() as connection:
            row = connection.execute(_BY_ID, {"id": connector_id}).first()
            return StoredConnector.from_row(row) if row is not None else None

    def version(self, connector_id: int) -> tuple[Any, ...] | None:
        """The connector's ``(created_at, updated_at)`` as the driver gives them, or None.

        A token to compare with an earlier answer of this method, read on every
        ``execute_model``: through a pooled driver connection, without the ``Connection``
        and result layers that cost three times the query on SQLite.
        """
        if connector_id > self.max_id:
            return None
        params: Any = {"id": connector_id}
        if self._version_sql.positional:
            params = tuple(params[name] for name in self._version_sql.positiontup or ())
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._version_sql.string, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, rolled back
        return tuple(row) if row is not None else None

    def create(
        self,
        name: str,
        configuration: dict[str, Any],
        secrets_encrypted: dict[str, str],
        shown: Callable[[StoredConnector], _T],
    ) -> _T:
        """Save a new connector; ``configuration`` must not hold any secret.

        ``shown(stored)`` (the answer to send) runs inside the transaction, after the row
        is written and before it is committed: if the database refuses the values
        (``Unstorable``) or ``shown`` raises, nothing is saved.
        """
        now = _now()
        row = ConnectorRow(
            name=name,
            connector_name=CONNECTOR_NAME,
            configuration=configuration,
            secrets_encrypted=secrets_encrypted,
            created_at=now,
            updated_at=now,
        )
        with self._session() as session, session.begin():
            session.add(row)
            with _refusals():
                session.flush()
            return shown(StoredConnector.from_row(row))

    def update(
        self,
        connector_id: int,
        name: str,
        configuration: dict[str, Any],
        secrets_encrypted: dict[str, str],
        shown: Callable[[StoredConnector], _T],
    ) -> _T | None:
        """Replace a connector's name, configuration and secrets; None if it is gone.

        As ``create``: ``shown(stored)`` runs before the commit, and nothing is changed
        if the database refuses the values or ``shown`` raises.
        """
        if connector_id > self.max_id:
            return None
        with self._session() as session, session.begin():
            row = session.get(ConnectorRow, connector_id, with_for_update=True)
            if row is None:
                return None
            if configuration != row.configuration:
                # Measured against a configuration (URL, request format...) they no longer
                # describe. New secrets alone (a rotated key) reach the same server.
                row.capabilities = None
                row.capabilities_measured_at = None
            row.name = name
            row.configuration = configuration
            row.secrets_encrypted = secrets_encrypted
            row.updated_at = _now()
            with _refusals():
                session.flush()
            return shown(StoredConnector.from_row(row))

    def delete(self, connector_id: int) -> bool:
        """Delete a connector; False if there was none with this id."""
        if connector_id > self.max_id:
            return False
        with self._session() as session, session.begin():
            row = session.get(ConnectorRow, connector_id)
            if row is None:
                return False
            session.delete(row)
        return True
