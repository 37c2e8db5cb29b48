"""The message envelope of the connector contract, as pydantic models.

Every output is ``{"type": T, T: {...}}`` with exactly one payload key. Serialize with
``message.model_dump(mode="json", exclude_none=True)`` (or ``message.to_json()``) to get
exactly the contract's JSON; record data keeps its own nulls.

>>> RecordMessage(data={"a": None}, emitted_at=1).to_message().to_json()
'{"type":"record","record":{"data":{"a":null},"emitted_at":1}}'
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Catalog",
    "ConnectionStatus",
    "ConnectorSpecification",
    "ControlMessage",
    "LogLevel",
    "LogMessage",
    "MessageType",
    "MetaData",
    "ProtocolMessage",
    "RecordMessage",
    "SyncConfig",
    "TrackingMessage",
    "log_message",
    "record_message",
]

MessageType = Literal[
    "connector_spec", "connection_status", "catalog", "record", "log", "control", "tracking"
]
LogLevel = Literal["fatal", "error", "warn", "info", "debug", "trace"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    _type: MessageType

    def to_message(self) -> ProtocolMessage:
        """Wrap this payload in the ``{"type": T, T: {...}}`` envelope."""
        return ProtocolMessage.model_validate({"type": self._type, self._type: self})


class ConnectorSpecification(_Payload):
    """The connector's specification (``spec``): its configuration's JSON schema and kind."""

    _type: MessageType = "connector_spec"
    documentation_url: str
    stream_type: str
    connector_query_type: str
    connection_specification: dict[str, Any]
    supports_normalization: bool = False
    supports_dbt: bool = False


class ConnectionStatus(_Payload):
    """The result of ``check``: ``succeeded``, or ``failed`` with a message saying why."""

    _type: MessageType = "connection_status"
    status: Literal["succeeded", "failed"]
    message: str | None = None


class Catalog(_Payload):
    """What ``discover`` answers: the streams, and the request-rate limits the platform uses."""

    _type: MessageType = "catalog"
    streams: list[dict[str, Any]] = Field(default_factory=list)
    request_rate_limit: int
    request_rate_limit_unit: str
    request_rate_concurrency: int
    schema_mode: str = "schema"
    source_defined_cursor: bool = False


class RecordMessage(_Payload):
    """One record of ``read``: an answer, a streamed chunk or the assembled answer."""

    _type: MessageType = "record"
    data: dict[str, Any]
    emitted_at: int = Field(default_factory=lambda: int(time.time()))


class LogMessage(_Payload):
    """A log line of the protocol: a warning (a cut-off stream) or an error (a failed read)."""

    _type: MessageType = "log"
    level: LogLevel
    message: str
    name: str | None = None
    stack_trace: str | None = None


class ControlMessage(_Payload):
    _type: MessageType = "control"
    type: str
    emitted_at: int = Field(default_factory=lambda: int(time.time()))
    meta: dict[str, Any] | None = None


class TrackingMessage(_Payload):
    _type: MessageType = "tracking"
    success: int = 0
    failed: int = 0
    meta: dict[str, Any] | None = None


class ProtocolMessage(BaseModel):
    """The envelope: ``type`` names which one payload field is set."""

    model_config = ConfigDict(extra="forbid")

    type: MessageType
    connector_spec: ConnectorSpecification | None = None
    connection_status: ConnectionStatus | None = None
    catalog: Catalog | None = None
    record: RecordMessage | None = None
    log: LogMessage | None = None
    control: ControlMessage | None = None
    tracking: TrackingMessage | None = None

    @model_validator(mode="after")
    def _one_payload(self) -> ProtocolMessage:
        present = [name for name in _PAYLOAD_FIELDS if getattr(self, name) is not None]
        if present != [self.type]:
            raise ValueError(f"a {self.type!r} message must carry exactly the {self.type!r} key")
        return self

    @property
    def payload(self) -> _Payload:
        """The one payload this message carries."""
        value: _Payload = getattr(self, self.type)
        return value

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON as a dict."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        """The contract's JSON as compact text (one line)."""
        # What ``model_dump_json(exclude_none=True)`` runs, without its Python wrapper: the
        # CLI calls this once per streamed chunk, and the wrapper cost a third of the call.
        return self.__pydantic_serializer__.to_json(self, exclude_none=True).decode()


_PAYLOAD_FIELDS = (
    "connector_spec",
    "connection_status",
    "catalog",
    "record",
    "log",
    "control",
    "tracking",
)


def record_message(data: dict[str, Any], emitted_at: int | None = None) -> ProtocolMessage:
    """A ``record`` message for trusted data, built without re-validating ``data``.

    The hot path of streaming makes one of these per chunk; the data is a dict that
    ``json.loads`` just produced, so validating it again would only cost time. The two
    models are filled in directly (what ``model_construct`` does, without its per-field
    loop over defaults, which cost more than decoding and parsing the chunk):
    ``tests/test_protocol.py`` checks the result equals the ``model_construct`` one.
    """
    record = _new(RecordMessage)
    _set_dict(
        record, {"data": data, "emitted_at": int(_now()) if emitted_at is None else emitted_at}
    )
    _set_fields_set(record, {"data", "emitted_at"})
    _set_extra(record, {})
    _set_private(record, {"_type": "record"})
    message = _new(ProtocolMessage)
    _set_dict(message, {**_EMPTY_ENVELOPE, "type": "record", "record": record})
    _set_fields_set(message, {"type", "record"})
    _set_extra(message, None)
    _set_private(message, None)
    return message


_new = object.__new__
# BaseModel's own slot setters, called directly: ``object.__setattr__(obj, name, value)``
# looks each name up through the class's MRO first, a fifth of this function's time.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_now = time.time
_EMPTY_ENVELOPE: dict[str, Any] = dict.fromkeys(("type", *_PAYLOAD_FIELDS))


def log_message(level: LogLevel, message: str, name: str | None = None) -> ProtocolMessage:
    """A ``log`` message."""
    return LogMessage(level=level, message=message, name=name).to_message()


class MetaData(BaseModel):
    """The connector's meta data: ``{"data": {"name": "GenericOpenAI", ...}}``."""

    model_config = ConfigDict(extra="allow")
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class _SyncSource(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    type: str | None = None
    connection_specification: dict[str, Any]
    query_type: str | None = None


class _SyncModel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    query: str | dict[str, Any]
    query_type: str | None = None
    primary_key: str | None = None


class SyncConfig(BaseModel):
    """What ``read`` receives: the connection in ``source``, the payload in ``model.query``."""

    model_config = ConfigDict(extra="ignore")
    source: _SyncSource
    model: _SyncModel
    destination: dict[str, Any] | None = None
    stream: dict[str, Any] | None = None
    sync_mode: str | None = None
    destination_sync_mode: str | None = None
    sync_id: str | None = None
