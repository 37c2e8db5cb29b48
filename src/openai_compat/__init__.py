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

from typing import TYPE_CHECKING, Any

from .advanced import AdvancedOptions
from .config import SourceConfig, load_config
from .connector import OpenAICompatibleConnector
from .endpoint import Completion, Endpoint, Exchange
from .errors import (
    ConfigurationError,
    ConnectError,
    EndpointError,
    FieldProblem,
    OpenAICompatError,
    OutputError,
    RequestTimeout,
    StreamError,
    TransportError,
    UsageError,
)
from .mapping import PayloadBuilder, RowMappingError
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
from .retries import RetryPolicy
from .stream import ChunkAssembler

if TYPE_CHECKING:
    from .batch import BatchResult, BatchRun, BatchSummary, run_batch, run_batch_sync

__version__ = "0.1.0"

# The earlier name of ``RequestTimeout``: it stays importable, but is left out of ``__all__``
# so that ``from openai_compat import *`` does not hide the builtin.
TimeoutError = RequestTimeout

# Batch runs bring their own dependencies (the rate limiter, the progress bar, aiohttp):
# they load on first use of one of these names, not with the package.
_BATCH_NAMES = frozenset({"BatchResult", "BatchRun", "BatchSummary", "run_batch", "run_batch_sync"})


def __getattr__(name: str) -> Any:
    if name in _BATCH_NAMES:
        from . import batch

        value = getattr(batch, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'openai_compat' has no attribute {name!r}")


__all__ = [
    "AdvancedOptions",
    "BatchResult",
    "BatchRun",
    "BatchSummary",
    "Catalog",
    "ChunkAssembler",
    "Completion",
    "ConfigurationError",
    "ConnectError",
    "ConnectionStatus",
    "ConnectorSpecification",
    "Endpoint",
    "EndpointError",
    "Exchange",
    "FieldProblem",
    "LogMessage",
    "MetaData",
    "OpenAICompatError",
    "OpenAICompatibleConnector",
    "OutputError",
    "PayloadBuilder",
    "ProtocolMessage",
    "RecordMessage",
    "RequestTimeout",
    "RetryPolicy",
    "RowMappingError",
    "SourceConfig",
    "StreamError",
    "SyncConfig",
    "TransportError",
    "UsageError",
    "__version__",
    "load_config",
    "run_batch",
    "run_batch_sync",
]
