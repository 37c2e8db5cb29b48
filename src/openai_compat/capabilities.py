"""What a server supports, measured with tiny requests: `probe_capabilities`.

``openai-compat check --capabilities`` prints it as one protocol record. Each probe is one
small request built from the configuration's ``request_format`` (its model and options):

- ``json_schema``: ``refused`` (a 4xx), ``accepted``, or ``enforced`` (a prompt asking for
  something else still came back valid against the schema);
- ``json_object`` and ``tools``: ``refused``, ``ignored`` (no JSON / no tool call came
  back) or ``accepted``;
- ``stream_options.include_usage``, ``n > 1`` and ``logprobs``: true or false;
- ``reasoning_field``: ``reasoning_content``, ``reasoning`` or None, as the stream sent it;
- ``models``: the ids ``GET /v1/models`` lists (None when it answers none), sent by the
  same client as the probes (`list_models`).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from ._transports import ClientFactory
from .config import SourceConfig
from .endpoint import Completion, Endpoint
from .errors import ConfigurationError, EndpointError, OpenAICompatError
from .retries import RetryPolicy
from .structured import Validator, extract_json

__all__ = ["list_models", "models_url", "probe_capabilities"]

_PROBE_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["answer"],
    "additionalProperties": False,
}
_NO_RETRY = RetryPolicy(max_retries=0)


def _base(config: SourceConfig, text: str, max_tokens: int = 32) -> dict[str, Any]:
    payload = {
        key: value
        for key, value in config.request_format.items()
        if key not in ("messages", "stream", "stream_options", "response_format", "tools")
    }
    payload.setdefault("model", "model")
    payload["messages"] = [{"role": "user", "content": text}]
    payload["max_tokens"] = max_tokens
    payload["stream"] = False
    return payload


def _message(response: dict[str, Any]) -> dict[str, Any]:
    choices = response.get("choices") or [{}]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    return message if isinstance(message, dict) else {}


async def _unless_refused(endpoint: Endpoint, payload: dict[str, Any]) -> Completion | None:
    """The answer to ``payload``; None when the server refuses it (a 4xx: the feature
    probed is not accepted). Other failures are raised."""
    try:
        return await endpoint.complete(payload)
    except EndpointError as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            return None
        raise


async def _json_schema(endpoint: Endpoint, config: SourceConfig) -> str:
    payload = _base(config, "Reply with the single word hello and nothing else.", 64)
    payload["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "probe", "schema": _PROBE_SCHEMA, "strict": True},
    }
    answer = await _unless_refused(endpoint, payload)
    if answer is None:
        return "refused"
    content = _message(answer.response).get("content")
    value = extract_json(content) if isinstance(content, str) else None
    valid = value is not None and Validator(_PROBE_SCHEMA).is_valid(value)
    return "enforced" if valid else "accepted"


async def _json_object(endpoint: Endpoint, config: SourceConfig) -> str:
    payload = _base(config, 'Reply in JSON with one key, "answer", holding the number 1.')
    payload["response_format"] = {"type": "json_object"}
    answer = await _unless_refused(endpoint, payload)
    if answer is None:
        return "refused"
    content = _message(answer.response).get("content")
    # A server that honours json_object answers bare JSON, not JSON inside prose.
    try:
        value = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        value = None
    return "accepted" if isinstance(value, dict) else "ignored"


async def _tools(endpoint: Endpoint, config: SourceConfig) -> str:
    payload = _base(config, "Record the answer 1.", 64)
    payload["tools"] = [
        {"type": "function", "function": {"name": "record", "parameters": _PROBE_SCHEMA}}
    ]
    payload["tool_choice"] = {"type": "function", "function": {"name": "record"}}
    answer = await _unless_refused(endpoint, payload)
    if answer is None:
        return "refused"
    return "accepted" if _message(answer.response).get("tool_calls") else "ignored"


async def _stream(endpoint: Endpoint, config: SourceConfig) -> tuple[bool, str | None]:
    payload = _base(config, "Say hi.", 16)
    payload["stream"] = True
    payload["stream_options"] = {"include_usage": True}
    try:
        answer = await endpoint.complete(payload, keep_chunks=True)
    except OpenAICompatError:
        return False, None
    field = None
    for chunk in answer.chunks or []:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                for name in ("reasoning_content", "reasoning"):
                    if delta.get(name):
                        field = field or name
    return answer.streamed and answer.usage is not None, field


async def _n(endpoint: Endpoint, config: SourceConfig) -> bool:
    payload = _base(config, "Say hi.", 8)
    payload["n"] = 2
    try:
        answer = await endpoint.complete(payload)
    except OpenAICompatError:
        return False
    return len(answer.response.get("choices") or []) >= 2


async def _logprobs(endpoint: Endpoint, config: SourceConfig) -> bool:
    payload = _base(config, "Say hi.", 8)
    payload["logprobs"] = True
    try:
        answer = await endpoint.complete(payload)
    except OpenAICompatError:
        return False
    choices = answer.response.get("choices") or [{}]
    return isinstance(choices[0], dict) and choices[0].get("logprobs") is not None


def models_url(config: SourceConfig) -> str | None:
    """``.../models`` beside the configured URL (its query left off); None when the URL
    does not end in its dialect's path.

    >>> models_url(SourceConfig.parse({"url": "http://h:1/v1/chat/completions?x=1",
    ...     "api_key": "k", "request_format": "{}"}))
    'http://h:1/v1/models'
    """
    url = config.url.split("?", 1)[0]
    cut = url.rfind(config.dialect.path)
    return None if cut == -1 else url[:cut] + "/models"


async def _models(endpoint: Endpoint) -> list[str]:
    url = models_url(endpoint.config)
    if url is None:
        raise ConfigurationError(
            f"the URL does not end in {endpoint.config.dialect.path}: the models list is "
            "looked for beside it (.../models)",
            field="url",
        )
    body = await endpoint.client.get(url)
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        data = None
    if not isinstance(data, list):
        raise EndpointError(
            'GET .../models did not answer a model list ({"data": [{"id": ...}, ...]}): '
            "the server does not list its models"
        )
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


async def list_models(
    config: SourceConfig | dict[str, Any] | str, *, client_factory: ClientFactory | None = None
) -> list[str]:
    """The model ids ``GET /v1/models`` (beside the configured URL) lists.

    Sent once, with the configuration's key and headers, by a client ``client_factory``
    makes (a server's guarded one: its address policy holds for this GET as for a POST).
    Raises ``EndpointError`` (a non-2xx answer, or no model list), ``TransportError``
    (no answer, or an address the guard refuses) or ``ConfigurationError``.
    """
    cfg = SourceConfig.parse(config)
    async with Endpoint(cfg, retry=_NO_RETRY, client_factory=client_factory) as endpoint:
        return await _models(endpoint)


async def probe_capabilities(
    config: SourceConfig | dict[str, Any] | str,
    *,
    client_factory: ClientFactory | None = None,
    list_models: bool = True,
) -> dict[str, Any]:
    """What the server of ``config`` supports (the keys of this module's docstring).

    ``client_factory`` makes the probes' HTTP clients (the application's guarded one),
    ``GET /v1/models``'s included; ``list_models=False`` leaves that GET out. ``models``
    is None when it is left out or the server answers no model list.
    """
    cfg = SourceConfig.parse(config)
    found: dict[str, Any] = {}
    async with Endpoint(cfg, retry=_NO_RETRY, client_factory=client_factory) as endpoint:
        for name, probe in (
            ("json_schema", _json_schema),
            ("json_object", _json_object),
            ("tools", _tools),
        ):
            try:
                found[name] = await probe(endpoint, cfg)
            except OpenAICompatError as exc:
                found[name] = f"failed: {exc}"
        found["stream_options.include_usage"], found["reasoning_field"] = await _stream(
            endpoint, cfg
        )
        found["n>1"] = await _n(endpoint, cfg)
        found["logprobs"] = await _logprobs(endpoint, cfg)
        found["models"] = None
        if list_models:
            with contextlib.suppress(OpenAICompatError):
                found["models"] = await _models(endpoint)
    return found


def capabilities_record(config: Any) -> int:
    """``check --capabilities``: print the measured capabilities as one protocol record
    (exit 0), or the configuration's problem (exit 2)."""
    import sys

    from ._sync import run_sync
    from .protocol import RecordMessage

    try:
        cfg = SourceConfig.parse(config)
    except ConfigurationError as exc:
        print(f"openai-compat check: invalid configuration: {exc}", file=sys.stderr)
        return 2
    found = run_sync(probe_capabilities(cfg))
    record = RecordMessage(data={"capabilities": found}).to_message()
    print(record.to_json())
    return 0
