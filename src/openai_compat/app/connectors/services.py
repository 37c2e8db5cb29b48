"""The saved connectors' services: the store, the key cipher, the address policy, the connector.

Also the steps every use of a configuration takes (a route, the fast lane, a run): decrypt
the stored secrets, resolve ``ENV["NAME"]`` values, validate, and refuse forbidden endpoint
addresses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from ...config import SourceConfig
from ...connector import OpenAICompatibleConnector
from ...errors import ConfigurationError
from ..egress import AddressPolicy, EgressRefused
from ..http import ApiError, FieldError, render_json, surrogate_problems_of
from ..secrets import MASK, KeyCipher, SecretFields, has_env_refs, resolve_env_refs
from ._config_cache import CachedConfig, ConfigCache
from .store import ConnectorStore, StoredConnector

__all__ = ["MASK", "ConnectorServices"]

_T = TypeVar("_T")


@dataclass
class ConnectorServices:
    """What every use of a saved connector needs (one per app)."""

    store: ConnectorStore
    cipher: KeyCipher
    policy: AddressPolicy
    connector: OpenAICompatibleConnector
    secret_fields: SecretFields
    cache: ConfigCache = field(default_factory=ConfigCache)

    # -- stored connectors ----------------------------------------------------------------

    async def _read(self, query: Callable[[int], _T], connector_id: int) -> _T:
        if self.store.engine.dialect.name == "sqlite":
            # A primary-key read of a local file takes well under a millisecond and WAL
            # readers never wait for writers: cheaper inline than a worker-thread hop.
            return query(connector_id)
        return await run_in_threadpool(query, connector_id)

    async def load(self, connector_id: int) -> StoredConnector:
        """The saved connector, or a 404 ``ApiError``."""
        stored = await self._read(self.store.get, connector_id)
        if stored is None:
            raise ApiError(404, f"there is no connector with id {connector_id}")
        return stored

    async def usable_saved(self, connector_id: int) -> SourceConfig:
        """``usable(raw_config(load(connector_id)))``, from the cache when the row is unchanged.

        The row's version is read on every call, so a change made by any process is used
        at once; ``ENV[...]`` values are resolved and the endpoint address is checked at
        every call too.
        """
        version = await self._read(self.store.version, connector_id)
        entry = self.cache.get(connector_id, version) if version is not None else None
        if entry is None:
            stored = await self.load(connector_id)
            raw = self.raw_config(stored)
            # Keyed by the version read before the row: the row is that version or newer,
            # and once the row is newer the database never answers this version again. (A
            # row that appeared after the version was read is kept under (), never matched.)
            version = version or ()
            if has_env_refs(raw):
                self.cache.put(connector_id, CachedConfig(version, None, raw))
                return await self.usable(raw)
            config = await self.usable(raw)
            self.cache.put(connector_id, CachedConfig(version, config, None))
            return config
        if entry.parsed is None:
            assert entry.raw is not None
            return await self.usable(entry.raw)
        await self.check_address(entry.parsed.url, "configuration.url")
        return entry.parsed

    def stored_secrets(
        self, stored: StoredConnector, *, skip: Collection[str] = ()
    ) -> dict[str, str]:
        """The stored secrets in clear (dotted path -> value), but for the paths of ``skip``.

        Secrets about to be replaced are skipped, so that a row whose secrets cannot be
        decrypted any more can still be saved again with new ones.
        """
        try:
            return {
                path: self.cipher.decrypt(token)
                for path, token in stored.secrets_encrypted.items()
                if path not in skip
            }
        except ValueError as exc:
            raise ApiError(409, str(exc)) from None

    def encrypt_secrets(self, secrets: dict[str, str]) -> dict[str, str]:
        """``secrets`` (path -> clear value) encrypted value by value, for the store."""
        return {path: self.cipher.encrypt(value) for path, value in secrets.items()}

    def raw_config(self, stored: StoredConnector) -> dict[str, Any]:
        """The saved configuration with its secrets, as the connector takes it."""
        return self.secret_fields.merge(stored.configuration, self.stored_secrets(stored))

    def public_view(self, stored: StoredConnector) -> dict[str, Any]:
        """The connector as routes return it: every secret masked (an ``ENV[...]`` stays).

        ``secrets_set`` lists the secret fields that hold a value (what the form shows as
        "saved — leave empty to keep"); ``api_key_set`` is the same for the API key.
        """
        secrets = self.stored_secrets(stored)
        return {
            "id": stored.id,
            "name": stored.name,
            "connector_name": stored.connector_name,
            "configuration": self.secret_fields.masked(stored.configuration, secrets),
            "api_key_set": bool(secrets.get("api_key")),
            "secrets_set": sorted(path for path, value in secrets.items() if value),
            "created_at": stored.created_at.isoformat(),
            "updated_at": stored.updated_at.isoformat(),
        }

    def shown(self, stored: StoredConnector) -> bytes:
        """``public_view(stored)`` as JSON bytes; ``UnicodeEncodeError`` or ``ValueError``
        if it cannot be shown, ``ApiError`` (409) if its secrets cannot be decrypted."""
        return render_json(self.public_view(stored))

    def shown_or_refusal(self, stored: StoredConnector) -> bytes:
        """``shown(stored)``, or the 409 ``ApiError`` of a row that cannot be shown."""
        try:
            return self.shown(stored)
        except (UnicodeError, ValueError) as exc:
            raise self.unshowable(stored, exc) from None

    def listed(self, stored: StoredConnector) -> bytes:
        """``stored`` as a list item: its view, or ``{"id", "error"}`` when it cannot be
        shown; one bad row never breaks a page."""
        try:
            return self.shown_or_refusal(stored)
        except ApiError as exc:
            return render_json({"id": stored.id, "error": exc.body["message"]})

    @staticmethod
    def unshowable(stored: StoredConnector, cause: Exception) -> ApiError:
        """The 409 of a row whose name or configuration is not text that can be shown."""
        # The cause's type only: its text would quote the value.
        reason = (
            "it holds text that is not valid Unicode"
            if isinstance(cause, UnicodeError)
            else "it holds a value JSON cannot show"
        )
        return ApiError(
            409,
            f"connector {stored.id} cannot be shown: {reason} (written to the database by "
            "something else than this application); delete it or save it again",
        )

    # -- using a configuration ------------------------------------------------------------

    async def usable(self, raw: dict[str, Any], prefix: str = "configuration") -> SourceConfig:
        """Resolve ``ENV[...]``, validate, and check the endpoint address; 422 if unusable."""
        # A lone surrogate reaches no encoder (headers, the body, an error message).
        problems = surrogate_problems_of(raw, prefix)
        if problems:
            raise ApiError.invalid(problems)
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
