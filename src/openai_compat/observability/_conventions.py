"""The names the OpenTelemetry GenAI semantic conventions give spans, attributes and metrics.

Only names and pure mappings live here: which operation a dialect's requests are, which
request parameters become which ``gen_ai.request.*`` attribute, and the histograms' bucket
boundaries the conventions advise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "DURATION_BUCKETS",
    "PROVIDER",
    "REQUEST_PARAMETERS",
    "TOKEN_BUCKETS",
    "operation_name",
    "request_attributes",
]

#: Every endpoint speaks the OpenAI REST API: the conventions' provider of that format.
PROVIDER = "openai"
INSTRUMENTATION = "openai_compat"

OPERATION = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOKEN_TYPE = "gen_ai.token.type"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"

# The conventions' advised explicit bucket boundaries of the two client histograms.
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

# A dialect's name (its name in configurations) -> the operation the conventions name.
_OPERATIONS = {
    "chat": "chat",
    "embeddings": "embeddings",
    "completions": "text_completion",
    "responses": "chat",
}

#: A request body's field -> the ``gen_ai.request.*`` attribute it is recorded as.
REQUEST_PARAMETERS: Mapping[str, str] = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "stop": "gen_ai.request.stop_sequences",
    "encoding_format": "gen_ai.request.encoding_formats",
    "stream": "gen_ai.request.stream",
}


def operation_name(dialect: Any) -> str:
    """The ``gen_ai.operation.name`` of a dialect's requests (its ``name``, mapped).

    >>> from openai_compat.apis import CHAT
    >>> operation_name(CHAT)
    'chat'
    """
    name = str(getattr(dialect, "name", "chat"))
    return _OPERATIONS.get(name, name)


def _attribute_value(value: Any) -> Any:
    """``value`` as an attribute value, or None when it is not one (a dict, a mixed list)."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def request_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``gen_ai.request.*`` attributes of the parameters ``body`` sets.

    >>> request_attributes({"model": "m", "temperature": 0.5, "stop": "END", "messages": []})
    {'gen_ai.request.model': 'm', 'gen_ai.request.temperature': 0.5, \
'gen_ai.request.stop_sequences': ('END',)}
    """
    out: dict[str, Any] = {}
    model = body.get("model")
    if isinstance(model, str):
        out[REQUEST_MODEL] = model
    # The body's fields are few beside the parameters known: look each up, not each known one.
    for field, value in body.items():
        name = REQUEST_PARAMETERS.get(field)
        if name is None or value is None:
            continue
        if field == "stop" and isinstance(value, str):
            value = [value]
        if field == "encoding_format" and isinstance(value, str):
            value = [value]
        value = _attribute_value(value)
        if value is not None:
            out[name] = value
    return out
