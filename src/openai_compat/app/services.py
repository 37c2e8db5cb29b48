"""What the routes share: the store, the key cipher, the address policy, the connector.

Also the steps every route that uses a configuration takes: decrypt the stored key,
resolve ``ENV["NAME"]`` values, validate, and refuse forbidden endpoint addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..config import SourceConfig
from ..errors import ConfigurationError
from .credentials import KeyCipher
from .egress import AddressPolicy, EgressRefused
from .env_refs import env_ref_name, resolve_env_refs
from .execution import AppConnector
from .problems import ApiError, FieldError
from .store import ConnectorStore, StoredConnector

__all__ = ["MASK", "Services"]

MASK = "********"


@dataclass
class Services:
    """The application's shared objects (one per app)."""

    store: ConnectorStore
    cipher: KeyCipher
    policy: AddressPolicy
    connector: AppConnector
    token: str

    # -- stored connectors ----------------------------------------------------------------

    async def load(self, connector_id: int) -> StoredConnector:
        """The saved connector, or a 404 ``ApiError``."""
        if self.store.engine.dialect.name == "sqlite":
            # A primary-key read of a local file takes well under a millisecond and WAL
            # readers never wait for writers: cheaper inline than a worker-thread hop.
            stored = self.store.get(connector_id)
        else:
            stored = await run_in_threadpool(self.store.get, connector_id)
        if stored is None:
            raise ApiError(404, f"there is no connector with id {connector_id}")
        return stored

    def stored_key(self, stored: StoredConnector) -> str | None:
        """The stored API key in clear (None when none was stored)."""
        if stored.api_key_encrypted is None:
            return None
        try:
            return self.cipher.decrypt(stored.api_key_encrypted)
        except ValueError as exc:
            raise ApiError(409, str(exc)) from None

    def raw_config(self, stored: StoredConnector) -> dict[str, Any]:
        """The saved configuration with its key, as the connector takes it."""
        raw = dict(stored.configuration)
        key = self.stored_key(stored)
        if key is not None:
            raw["api_key"] = key
        return raw

    def public_view(self, stored: StoredConnector) -> dict[str, Any]:
        """The connector as routes return it: the API key masked (an ``ENV[...]`` stays)."""
        configuration = dict(stored.configuration)
        key = self.stored_key(stored)
        if key is not None:
            configuration["api_key"] = key if env_ref_name(key) else (MASK if key else "")
        return {
            "id": stored.id,
            "name": stored.name,
            "connector_name": stored.connector_name,
            "configuration": configuration,
            "api_key_set": bool(key),
            "created_at": stored.created_at.isoformat(),
            "updated_at": stored.updated_at.isoformat(),
        }

    # -- using a configuration ------------------------------------------------------------

    async def usable(self, raw: dict[str, Any], prefix: str = "configuration") -> SourceConfig:
        """Resolve ``ENV[...]``, validate, and check the endpoint address; 422 if unusable."""
        try:
            config = SourceConfig.parse(resolve_env_refs(raw))
        except ConfigurationError as exc:
            raise ApiError.from_config_error(exc, prefix) from None
        await self.check_address(config.url, f"{prefix}.url")
        return config

    async def check_address(self, url: str, field: str) -> None:
        """422 when ``url`` points at an address the operator does not allow."""
        try:
            await self.policy.check_url(url)
        except EgressRefused as exc:
            raise ApiError.invalid([FieldError(field, str(exc))]) from None
