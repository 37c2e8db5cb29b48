"""``OpenAICompatibleConnector``: the original connector's operations, as protocol messages.

Every operation returns messages of the contract (``connector_spec``,
``connection_status``, ``catalog``, ``record``, ``log``); failures are ``log`` messages
with level ``error`` (or a ``failed`` status), never a bare string or a stray exception.
The async methods are the core; the sync ones run them to completion.

>>> connector = OpenAICompatibleConnector()
>>> connector.spec().connector_spec.connector_query_type
'ai_ml'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from . import resources
from ._characters import surrogate_problem
from ._client import OnRetry
from ._consume import Consumer
from ._json import MAX_DEPTH, check_depth, parse_json_object
from ._strict_json import encode_body
from ._sync import run_sync
from ._transports import ClientFactory, Sendable
from .apis import Dialect, check_request
from .config import SourceConfig
from .endpoint import Endpoint
from .errors import ConfigurationError, OpenAICompatError
from .protocol import (
    Catalog,
    ConnectionStatus,
    ConnectorSpecification,
    MetaData,
    ProtocolMessage,
    SyncConfig,
    log_message,
    record_message,
)
from .retries import RetryPolicy

__all__ = ["OpenAICompatibleConnector"]

RawConfig = SourceConfig | dict[str, Any] | str
_NAME = "OpenAICompatible"
# How many endpoints (one per configuration object) a connector keeps for reuse.
_ENDPOINTS_KEPT = 64


async def _collect(messages: AsyncIterator[ProtocolMessage]) -> list[ProtocolMessage]:
    return [message async for message in messages]


class OpenAICompatibleConnector:
    """The "OpenAI Compatible Endpoint" source connector.

    ``retry`` sets the retry policy (default: 2 retries, as the official SDK);
    ``client`` shares one ``httpx.AsyncClient`` (or another `AsyncTransport`, such as the
    application's aiohttp pool) between calls (useful in servers);
    ``client_factory`` makes the client of a configuration with TLS or proxy options.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        client: Sendable | None = None,
        on_retry: OnRetry | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.retry = retry
        self.client = client
        self.on_retry = on_retry
        self.client_factory = client_factory
        # id(config) -> (config, what the endpoint was made with, the endpoint).
        self._endpoints: dict[int, tuple[SourceConfig, tuple[Any, ...], Endpoint]] = {}

    def endpoint(self, config: RawConfig) -> Endpoint:
        """An ``Endpoint`` for ``config`` with this connector's retry policy and clients.

        On a shared ``client``, the endpoint of a ``SourceConfig`` (frozen) is made once and
        reused: building its headers and error builder cost more than the request's own
        work in this package. Closing it closes nothing (the shared client is the caller's).
        """
        made_with = (self.client, self.retry, self.on_retry, self.client_factory)
        shareable = (
            self.client is not None
            and isinstance(config, SourceConfig)
            and not config.advanced.needs_own_client
        )
        if shareable:
            kept = self._endpoints.get(id(config))
            if kept is not None and kept[0] is config and kept[1] == made_with:
                return kept[2]
        endpoint = Endpoint(
            config,
            client=self.client,
            retry=self.retry,
            on_retry=self.on_retry,
            client_factory=self.client_factory,
        )
        if shareable:
            assert isinstance(config, SourceConfig)
            if len(self._endpoints) >= _ENDPOINTS_KEPT:
                del self._endpoints[next(iter(self._endpoints))]  # the oldest
            self._endpoints[id(config)] = (config, made_with, endpoint)
        return endpoint

    # -- spec, meta data, discover: data files --------------------------------------------

    def spec(self) -> ProtocolMessage:
        """The connector specification (a ``connector_spec`` message)."""
        return ConnectorSpecification.model_validate(resources.spec()).to_message()

    def meta_data(self) -> MetaData:
        """The connector's meta data, ``{"data": {"name": "GenericOpenAI", ...}}``."""
        return MetaData.model_validate(resources.meta())

    def discover(self, config: RawConfig | None = None) -> ProtocolMessage:
        """The catalog (rate limit 600/minute, concurrency 10); a ``log`` error if unreadable."""
        try:
            return Catalog.model_validate(resources.catalog()).to_message()
        except (OSError, ValueError, ValidationError) as exc:
            return log_message("error", f"cannot read the catalog: {exc}", f"{_NAME}:discover")

    # -- check ----------------------------------------------------------------------------

    def check_connection(self, config: RawConfig) -> ProtocolMessage:
        """POST the configured ``request_format`` and report ``succeeded`` or ``failed``."""
        return run_sync(self.acheck_connection(config))

    async def acheck_connection(self, config: RawConfig) -> ProtocolMessage:
        """Async twin of ``check_connection``."""
        try:
            cfg = SourceConfig.parse(config)
        except ConfigurationError as exc:
            return _status(f"invalid configuration: {exc}")
        dialect = cfg.dialect
        problem = dialect.url_problem(cfg.url)
        if problem:
            return _status(f"the URL {cfg.url} is probably not a {dialect.label} URL: {problem}")
        body, lacking = check_request(dialect, cfg.request_format)
        try:
            async with (
                self.endpoint(cfg) as endpoint,
                endpoint.request(body, as_is=True) as exchange,
            ):
                async for _ in exchange:
                    break  # one chunk (or the JSON answer) shows the endpoint works
            if lacking is not None:
                return ConnectionStatus(
                    status="succeeded", message=_other_api_note(dialect, lacking)
                ).to_message()
            return ConnectionStatus(status="succeeded").to_message()
        except OpenAICompatError as exc:
            return _status(str(exc))

    # -- read / run_model -----------------------------------------------------------------

    def read(
        self, sync_config: SyncConfig | dict[str, Any] | str, *, assemble: bool = False
    ) -> list[ProtocolMessage]:
        """Run the sync config's payload (``model.query``); records, then any log message."""
        return run_sync(_collect(self.aread(sync_config, assemble=assemble)))

    async def aread(
        self, sync_config: SyncConfig | dict[str, Any] | str, *, assemble: bool = False
    ) -> AsyncIterator[ProtocolMessage]:
        """Async twin of ``read``: yields messages as they arrive."""
        try:
            parsed = _parse_sync_config(sync_config)
            config = parsed.source.connection_specification
            payload = parse_json_object(parsed.model.query, field="model.query")
        except ConfigurationError as exc:
            yield log_message("error", f"invalid sync config: {exc}", f"{_NAME}:read")
            return
        async for message in self.arun_model(config, payload, assemble=assemble):
            yield message

    def run_model(
        self, config: RawConfig, payload: dict[str, Any] | str, *, assemble: bool = False
    ) -> list[ProtocolMessage]:
        """Send ``payload`` to the endpoint of ``config``; records, then any log message."""
        return run_sync(_collect(self.arun_model(config, payload, assemble=assemble)))

    async def arun_model(
        self, config: RawConfig, payload: dict[str, Any] | str, *, assemble: bool = False
    ) -> AsyncIterator[ProtocolMessage]:
        """Async twin of ``run_model``: one record per JSON answer or streamed chunk.

        With ``assemble``, a streamed answer is followed by one more record: the assembled
        ``chat.completion``. A stream that may have been cut off ends with a ``warn`` log;
        any failure ends with an ``error`` log.
        """
        try:
            cfg = SourceConfig.parse(config)
            body = (
                payload
                if isinstance(payload, dict)
                else parse_json_object(payload, field="payload")
            )
            encoded = _checked_body(body)
        except ConfigurationError as exc:
            yield log_message("error", f"nothing was sent: {exc}", f"{_NAME}:read")
            return
        try:
            async with (
                self.endpoint(cfg) as endpoint,
                endpoint.request(body, encoded=encoded) as exchange,
            ):
                consumer = Consumer(exchange, assemble=assemble)
                async for data in consumer:
                    # A JSON answer is the answer: handed on as `Endpoint.complete` hands it
                    # (an embeddings answer's base64 vectors decoded, say).
                    whole = not exchange.streamed
                    yield record_message(exchange.dialect.finish_answer(data) if whole else data)
                if not exchange.streamed:
                    return  # a JSON answer: no assembled record, no cut-off warning
                outcome = consumer.outcome()
                if assemble and outcome.answer is not None:
                    yield record_message(outcome.answer)
                for warning in outcome.warnings:
                    yield log_message("warn", warning, f"{_NAME}:read")
        except OpenAICompatError as exc:
            yield log_message("error", str(exc), f"{_NAME}:read")


def _checked_body(body: dict[str, Any]) -> bytes | None:
    """``body`` encoded to be sent, once its depth is checked (`ConfigurationError`s).

    The encoder is the guard: a payload it refuses is checked for a lone surrogate (and
    refused here, naming where it is); anything else it refuses (NaN, a date) is left to
    the client, which refuses it with its own words (None: encode it there).
    """
    try:
        encoded: bytes | None = encode_body(body)
    except (ValueError, TypeError, RecursionError):
        encoded = None
    # Only a body with more than MAX_DEPTH brackets can nest more deeply.
    if encoded is None or encoded.count(b"[") + encoded.count(b"{") > MAX_DEPTH:
        check_depth(body, field="payload")
    if encoded is None:
        problem = surrogate_problem(body)
        if problem is not None:  # it could not be encoded to be sent
            raise ConfigurationError(problem, field="payload")
    return encoded


def _other_api_note(dialect: Dialect, lacking: str) -> str:
    """What a succeeded check says when the request format is another API's request."""
    noun = dialect.noun.removesuffix(" requests")  # "embeddings requests": one request
    return (
        f'the URL is a {dialect.label} URL and the request format has no "{lacking}", so '
        f"it is not a {noun} request: the check sent the smallest {noun} "
        f'request instead (the request format\'s model, "{lacking}"); set request_format to a '
        f"{noun} request before reading or running rows"
    )


def _status(message: str) -> ProtocolMessage:
    return ConnectionStatus(status="failed", message=message).to_message()


def _parse_sync_config(raw: SyncConfig | dict[str, Any] | str) -> SyncConfig:
    if isinstance(raw, SyncConfig):
        return raw
    data = parse_json_object(raw, field="sync_config")
    try:
        return SyncConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigurationError(
            f"{err['msg']} (a sync config needs source.connection_specification and model.query)",
            field=where,
        ) from None
