"""A saved connector's last measured capabilities: stored on its row, read back for the page.

Written only if the connector is still the version it was measured as (its ``updated_at``):
capabilities measured while someone changed the configuration describe neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine

from .store import ConnectorRow

__all__ = ["MeasuredCapabilities", "read_capabilities", "store_capabilities"]

_TABLE = ConnectorRow.__table__
_READ = select(_TABLE.c.capabilities, _TABLE.c.capabilities_measured_at).where(
    _TABLE.c.id == bindparam("id")
)


@dataclass(frozen=True)
class MeasuredCapabilities:
    """What was measured (`probe_capabilities`'s record) and when; both None if never."""

    capabilities: dict[str, Any] | None
    measured_at: datetime | None

    def answer(self) -> dict[str, Any]:
        """The API's body: ``{"capabilities": {...} | null, "measured_at": ISO | null}``."""
        at = self.measured_at
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # SQLite hands back what it was given, less the zone
        return {
            "capabilities": self.capabilities,
            "measured_at": at.isoformat() if at is not None else None,
        }


def read_capabilities(engine: Engine, connector_id: int) -> MeasuredCapabilities | None:
    """The connector's last measured capabilities; None when there is no such connector."""
    with engine.connect() as connection:
        row = connection.execute(_READ, {"id": connector_id}).first()
    if row is None:
        return None
    found = row.capabilities
    return MeasuredCapabilities(dict(found) if found is not None else None, row[1])


def store_capabilities(
    engine: Engine, connector_id: int, version: datetime, found: dict[str, Any]
) -> MeasuredCapabilities | None:
    """Store ``found`` as measured now on the connector whose ``updated_at`` is ``version``;
    None (nothing stored) when it is gone or changed since."""
    measured = MeasuredCapabilities(dict(found), datetime.now(UTC))
    statement = (
        update(ConnectorRow)
        .where(ConnectorRow.id == connector_id, ConnectorRow.updated_at == version)
        .values(capabilities=measured.capabilities, capabilities_measured_at=measured.measured_at)
    )
    with engine.begin() as connection:
        changed = connection.execute(statement).rowcount
    return measured if changed else None
