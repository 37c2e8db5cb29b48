"""The usable configurations of saved connectors, kept between requests.

Loading a saved connector for a request means reading its row, decrypting its secrets,
merging them in and validating the result: several times the cost of the rest of the
application's work per request. An entry is keyed by the row's identity and version
(``created_at``, ``updated_at``), which the caller reads from the database on every
request, so an update or a delete made by any process (several application instances may
share one PostgreSQL database) is seen by the next request. A configuration holding an
``ENV["NAME"]`` reference is kept unresolved: the variable is read again at each use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ...config import SourceConfig

__all__ = ["CachedConfig", "ConfigCache", "Version"]

Version = tuple[Any, ...]
"""A row's ``(created_at, updated_at)`` as ``ConnectorStore.version`` reads them: a re-used
id or an update gives a new version."""


@dataclass(frozen=True)
class CachedConfig:
    """A saved configuration ready to use: parsed, or raw when it needs ``ENV`` values."""

    version: Version
    parsed: SourceConfig | None
    raw: dict[str, Any] | None


class ConfigCache:
    """A small LRU map of connector id -> ``CachedConfig``, safe to use from threads."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[int, CachedConfig] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, connector_id: int, version: Version) -> CachedConfig | None:
        """The entry for this id when it was made from this version of the row."""
        with self._lock:
            entry = self._entries.get(connector_id)
            if entry is None or entry.version != version:
                return None
            self._entries.move_to_end(connector_id)
            return entry

    def put(self, connector_id: int, entry: CachedConfig) -> None:
        """Keep ``entry``; the least recently used one goes when the cache is full."""
        with self._lock:
            self._entries[connector_id] = entry
            self._entries.move_to_end(connector_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def discard(self, connector_id: int) -> None:
        """Forget the entry of a connector that was updated or deleted here."""
        with self._lock:
            self._entries.pop(connector_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
