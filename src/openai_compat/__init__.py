"""openai-compat: the "OpenAI Compatible Endpoint" connector, done right.

Public surface::

    from openai_compat import OpenAICompatibleConnector, Endpoint, SourceConfig

    connector = OpenAICompatibleConnector()
    status = connector.check_connection({"url": ".../v1/chat/completions", "api_key": "..."})
    for message in connector.run_model(config, {"model": "m", "messages": [...]}):
        print(message.to_json())

    from openai_compat import run_batch_sync   # a dataset through the endpoint
    summary = run_batch_sync(config, "tickets.csv", "results.jsonl", key="id")
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from .advanced import AdvancedOptions
from .apis import ChunkAssembler
from .config import SourceConfig, load_config
from .errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    EndpointError,
    FieldProblem,
    InternalServerError,
    NotFoundError,
    OpenAICompatError,
    OutputError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    StreamError,
    TransportError,
    UnprocessableEntityError,
    UsageError,
)
from .mapping import PayloadBuilder, RowMappingError
from .retries import RetryPolicy

if TYPE_CHECKING:
    from .batch import BatchResult, BatchRun, BatchSummary, run_batch, run_batch_sync
    from .connector import OpenAICompatibleConnector
    from .endpoint import Completion, Endpoint, Exchange
    from .protocol import (
        Catalog,
        ConnectionStatus,
        ConnectorSpecification,
        LogMessage,
        MetaData,
        ProtocolMessage,
        RecordMessage,
        SyncConfig,
    )

__version__ = "0.1.0"

# The earlier name of ``RequestTimeout``: it stays importable, but is left out of ``__all__``
# so that ``from openai_compat import *`` does not hide the builtin.
TimeoutError = RequestTimeout

# These load on first use of one of their names, not with the package: batch runs bring
# their own dependencies (the rate limiter, the progress bar, aiohttp), and the connector,
# the endpoint and the protocol bring httpx (with its command line: click, rich, pygments)
# and the protocol's models, which a process that only validates a configuration or maps
# rows (a Ray actor starting) does not need.
_LAZY = {
    **dict.fromkeys(
        ["BatchResult", "BatchRun", "BatchSummary", "run_batch", "run_batch_sync"], ".batch"
    ),
    "OpenAICompatibleConnector": ".connector",
    **dict.fromkeys(["Completion", "Endpoint", "Exchange"], ".endpoint"),
    **dict.fromkeys(
        [
            "Catalog",
            "ConnectionStatus",
            "ConnectorSpecification",
            "LogMessage",
            "MetaData",
            "ProtocolMessage",
            "RecordMessage",
            "SyncConfig",
        ],
        ".protocol",
    ),
}
# Submodules reachable as attributes of the package, loaded on first use like the names above.
_SUBMODULES = frozenset({"connector", "endpoint", "protocol"})


__getattr__ = lazy_attributes(__name__, _LAZY, globals(), submodules=_SUBMODULES)


__all__ = [
    "AdvancedOptions",
    "AuthenticationError",
    "BadRequestError",
    "BatchResult",
    "BatchRun",
    "BatchSummary",
    "Catalog",
    "ChunkAssembler",
    "Completion",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectionStatus",
    "ConnectorSpecification",
    "Endpoint",
    "EndpointError",
    "Exchange",
    "FieldProblem",
    "InternalServerError",
    "LogMessage",
    "MetaData",
    "NotFoundError",
    "OpenAICompatError",
    "OpenAICompatibleConnector",
    "OutputError",
    "PayloadBuilder",
    "PermissionDeniedError",
    "ProtocolMessage",
    "RateLimitError",
    "RecordMessage",
    "RequestTimeout",
    "RetryPolicy",
    "RowMappingError",
    "SourceConfig",
    "StreamError",
    "SyncConfig",
    "TransportError",
    "UnprocessableEntityError",
    "UsageError",
    "__version__",
    "load_config",
    "run_batch",
    "run_batch_sync",
]
