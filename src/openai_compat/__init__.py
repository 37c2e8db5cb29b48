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

from .advanced import AdvancedOptions
from .batch import BatchResult, BatchRun, BatchSummary, run_batch, run_batch_sync
from .config import SourceConfig, load_config
from .connector import OpenAICompatibleConnector
from .endpoint import Completion, Endpoint, Exchange
from .errors import (
    ConfigurationError,
    ConnectError,
    EndpointError,
    OpenAICompatError,
    StreamError,
    TimeoutError,
    TransportError,
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

__version__ = "0.1.0"

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
    "LogMessage",
    "MetaData",
    "OpenAICompatError",
    "OpenAICompatibleConnector",
    "PayloadBuilder",
    "ProtocolMessage",
    "RecordMessage",
    "RetryPolicy",
    "RowMappingError",
    "SourceConfig",
    "StreamError",
    "SyncConfig",
    "TimeoutError",
    "TransportError",
    "__version__",
    "load_config",
    "run_batch",
    "run_batch_sync",
]
