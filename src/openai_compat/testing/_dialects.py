"""The scripted server's answers for the other OpenAI APIs: embeddings, completions, Responses.

``POST .../embeddings``, ``.../completions`` (not chat) and ``.../responses`` answer like an
OpenAI-compatible server, deterministically:

- embeddings: one vector per input (``dimensions`` long, 8 by default), the same vector for
  the same text; ``encoding_format: "base64"`` gives little-endian float32 in base64; an
  empty input string is refused with 400, as OpenAI does; usage counts each input's words;
- completions: ``choices[0].text`` is ``"You said: <prompt>"``, streamed when asked (with a
  usage chunk when ``stream_options.include_usage`` asks);
- Responses: the output text is ``"You said: <input>"``, streamed as typed events (``event:``
  lines) ending with ``response.completed`` when asked.

Scenarios for these paths (``?scenario=``): ``shuffle`` (embeddings ``data[]`` in reverse
order), ``missing`` (the last embedding left out), ``no-base64`` (400 for base64),
``split`` (the stream cut at every byte), ``no-done`` (a Responses stream without its
terminal event, a completions stream without finish_reason and ``[DONE]``),
``failed`` (``response.failed``), ``error-event`` (an ``error`` event), ``incomplete``
(``response.incomplete``), ``reasoning`` (reasoning deltas before the text).
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from ._replies import (
    SSE_CONTENT_TYPE,
    Reply,
    _cut,
    _new_id,
    _split_words,
    dumps,
    encode_sse,
    error_reply,
    json_reply,
)

__all__ = [
    "DIALECT_SCENARIOS",
    "completion_chunks",
    "dialect_reply",
    "embedding_vector",
    "embeddings_answer",
    "encode_typed_sse",
    "is_dialect_path",
    "response_events",
    "response_object",
    "responses_sse_reply",
    "text_completion",
]

DIALECT_SCENARIOS = frozenset(
    {
        "normal",
        "stream",
        "shuffle",
        "missing",
        "no-base64",
        "split",
        "no-done",
        "failed",
        "error-event",
        "incomplete",
        "reasoning",
    }
)
_SSE_HEADERS = {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"}


def embedding_vector(text: str, dimensions: int = 8) -> list[float]:
    """The scripted server's vector of ``text``: multiples of 1/256 in [-0.5, 0.5), which
    float32 holds exactly (so base64 and float answers compare equal).

    >>> embedding_vector("hi", 3) == embedding_vector("hi", 3)
    True
    """
    seed = zlib.crc32(text.encode("utf-8", "surrogatepass"))
    out = []
    for i in range(dimensions):
        seed = (seed * 1103515245 + 12345 + i) & 0x7FFFFFFF
        out.append(((seed >> 8) % 256 - 128) / 256)
    return out


def _words(text: str) -> int:
    return max(len(text.split()), 1)


def embeddings_answer(
    inputs: Sequence[str],
    *,
    model: str = "mock-model",
    dimensions: int = 8,
    encoding: str = "float",
    order: Sequence[int] | None = None,
) -> dict[str, Any]:
    """An embeddings answer: ``data[]`` with one vector per input (in ``order`` of input
    indices when given), ``usage.prompt_tokens`` the inputs' words."""
    data = []
    for index in range(len(inputs)) if order is None else order:
        vector = embedding_vector(inputs[index], dimensions)
        embedding: Any = vector
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(_words(text) for text in inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def text_completion(text: str, *, model: str = "mock-model") -> dict[str, Any]:
    """A whole ``text_completion`` object."""
    n = len(_split_words(text))
    return {
        "id": _new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n},
    }


def completion_chunks(
    text: str, *, model: str = "mock-model", finish: bool = True, include_usage: bool = False
) -> list[dict[str, Any]]:
    """Streamed ``text_completion`` chunks of ``text``, the last with ``finish_reason``; with
    ``include_usage``, then a chunk without choices holding ``text_completion``'s usage."""
    chunk_id, created = _new_id("cmpl"), int(time.time())
    out = [
        {
            "id": chunk_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}],
        }
        for piece in _split_words(text)
    ]
    if finish:
        last: dict[str, Any] = {"id": chunk_id, "object": "text_completion", "model": model}
        last["choices"] = [{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]
        out.append(last)
    if include_usage:
        usage = text_completion(text, model=model)["usage"]
        out.append({"id": chunk_id, "object": "text_completion", "model": model, "choices": []})
        out[-1]["usage"] = usage
    return out


def response_object(
    text: str,
    *,
    model: str = "mock-model",
    status: str = "completed",
    reasoning: str | None = None,
    response_id: str | None = None,
) -> dict[str, Any]:
    """A whole Responses ``response`` object with one message item holding ``text``."""
    output: list[dict[str, Any]] = []
    if reasoning is not None:
        output.append(
            {
                "type": "reasoning",
                "id": "rs_mock",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": reasoning}],
            }
        )
    output.append(
        {
            "type": "message",
            "id": "msg_mock",
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    )
    out_tokens = len(_split_words(text)) + len(_split_words(reasoning or ""))
    return {
        "id": response_id or _new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 2},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": len(_split_words(reasoning or ""))},
            "total_tokens": 10 + out_tokens,
        },
    }


def response_events(
    text: str,
    *,
    model: str = "mock-model",
    terminal: str | None = "response.completed",
    reasoning: str | None = None,
    with_response: bool = True,
    tool_call: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The typed events of a streamed Responses answer.

    ``terminal`` is the last event's type (None: the stream is cut off before it);
    ``with_response=False`` sends it without its ``response`` (clients then build the
    answer from the deltas); ``tool_call`` (``name``, ``arguments``) adds a function call.
    """
    whole = response_object(text, model=model, reasoning=reasoning)
    rid = whole["id"]
    head = {k: whole[k] for k in ("id", "object", "created_at", "model")}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**head, "status": "in_progress", "output": []}},
        {"type": "response.in_progress", "response": {**head, "status": "in_progress"}},
    ]
    index = 0
    if reasoning is not None:
        item = {"type": "reasoning", "id": "rs_mock", "summary": []}
        events.append({"type": "response.output_item.added", "output_index": 0, "item": item})
        for piece in _split_words(reasoning):
            events.append(
                {
                    "type": "response.reasoning_text.delta",
                    "item_id": "rs_mock",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": piece,
                }
            )
        index = 1
    message = {"type": "message", "id": "msg_mock", "role": "assistant", "content": []}
    events.append({"type": "response.output_item.added", "output_index": index, "item": message})
    events.append(
        {
            "type": "response.content_part.added",
            "item_id": "msg_mock",
            "output_index": index,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []},
        }
    )
    for piece in _split_words(text):
        events.append(
            {
                "type": "response.output_text.delta",
                "item_id": "msg_mock",
                "output_index": index,
                "content_index": 0,
                "delta": piece,
            }
        )
    events.append(
        {
            "type": "response.output_text.done",
            "item_id": "msg_mock",
            "output_index": index,
            "content_index": 0,
            "text": text,
        }
    )
    if tool_call is not None:
        call = {
            "type": "function_call",
            "id": "fc_mock",
            "call_id": "call_mock",
            "name": tool_call["name"],
            "arguments": "",
        }
        events.append(
            {"type": "response.output_item.added", "output_index": index + 1, "item": call}
        )
        arguments = tool_call["arguments"]
        for start in range(0, len(arguments), 5):
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": "fc_mock",
                    "output_index": index + 1,
                    "delta": arguments[start : start + 5],
                }
            )
        whole["output"].append({**call, "arguments": arguments, "status": "completed"})
    if terminal is not None:
        final: dict[str, Any] = {"type": terminal}
        if terminal == "response.failed":
            final["response"] = {
                **head,
                "status": "failed",
                "error": {"code": "server_error", "message": "The model crashed."},
            }
        elif with_response:
            status = "completed" if terminal == "response.completed" else "incomplete"
            final["response"] = {**whole, "id": rid, "status": status}
            if status == "incomplete":
                final["response"]["incomplete_details"] = {"reason": "max_output_tokens"}
        events.append(final)
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def encode_typed_sse(events: Sequence[Mapping[str, Any]]) -> bytes:
    """Typed events as servers send them: ``event: <type>`` then ``data: <json>``."""
    return b"".join(
        b"event: %s\ndata: %s\n\n" % (str(e.get("type", "message")).encode(), dumps(e).encode())
        for e in events
    )


def responses_sse_reply(
    events: Sequence[Mapping[str, Any]],
    *,
    split_at: Sequence[int] | None = None,
    piece_delay_s: float = 0.0,
) -> Reply:
    """A Responses event stream (no ``[DONE]``: the terminal event ends it), one write per
    event unless ``split_at`` cuts the body at those byte offsets."""
    if split_at is not None:
        body = encode_typed_sse(events)
        return Reply(headers=_SSE_HEADERS, pieces=_cut(body, split_at), piece_delay_s=piece_delay_s)
    return Reply(headers=_SSE_HEADERS, pieces=tuple(encode_typed_sse([e]) for e in events))


def _inputs_of(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _input_text(value: Any) -> str:
    """The user text of a Responses ``input``: a string, or the last user message's text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, dict) and item.get("role", "user") == "user":
                content = item.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _embeddings(body: dict[str, Any], model: str, scenario: str) -> Reply:
    inputs = _inputs_of(body.get("input"))
    if inputs is None or not inputs:
        return error_reply(400, "'input' must be a string or a non-empty list of strings")
    if any(text == "" for text in inputs):
        return error_reply(400, "'$.input' is invalid: an input cannot be an empty string")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64") or (scenario == "no-base64" and encoding != "float"):
        return error_reply(400, f"encoding_format {encoding!r} is not supported")
    dimensions = body.get("dimensions", 8)
    if not isinstance(dimensions, int) or not 0 < dimensions <= 4096:
        return error_reply(400, "dimensions must be an integer from 1 to 4096")
    order: list[int] | None = None
    if scenario == "shuffle":
        order = list(reversed(range(len(inputs))))
    elif scenario == "missing":
        order = list(range(len(inputs) - 1))
    answer = embeddings_answer(
        inputs, model=model, dimensions=dimensions, encoding=encoding, order=order
    )
    return json_reply(answer)


def _every_byte(body: bytes) -> list[int]:
    return list(range(1, len(body)))


def _completions(body: dict[str, Any], model: str, scenario: str) -> Reply:
    prompt = body.get("prompt")
    text = "You said: " + (prompt if isinstance(prompt, str) else "")
    if body.get("stream") is not True and scenario != "stream":
        return json_reply(text_completion(text, model=model))
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    chunks = completion_chunks(
        text, model=model, finish=scenario != "no-done", include_usage=include_usage
    )
    pieces = encode_sse([dumps(c) for c in chunks], done=scenario != "no-done")
    if scenario == "split":
        joined = b"".join(pieces)
        return Reply(headers=_SSE_HEADERS, pieces=_cut(joined, _every_byte(joined)))
    return Reply(headers=_SSE_HEADERS, pieces=tuple(pieces))


def _responses(body: dict[str, Any], model: str, scenario: str) -> Reply:
    text = "You said: " + _input_text(body.get("input"))
    reasoning = "Let me think." if scenario == "reasoning" else None
    if body.get("stream") is not True and scenario != "stream":
        return json_reply(response_object(text, model=model, reasoning=reasoning))
    terminal: str | None = {
        "no-done": None,
        "failed": "response.failed",
        "incomplete": "response.incomplete",
    }.get(scenario, "response.completed")
    events = response_events(text, model=model, terminal=terminal, reasoning=reasoning)
    if scenario == "error-event":
        events = [
            *events[:3],
            {"type": "error", "code": "rate_limit_exceeded", "message": "Too many tokens."},
        ]
    if scenario == "split":
        whole = encode_typed_sse(events)
        return responses_sse_reply(events, split_at=_every_byte(whole))
    return responses_sse_reply(events)


def dialect_reply(path: str, body: dict[str, Any], model: str, scenario: str) -> Reply | None:
    """The answer to a POST of ``body`` to ``path`` for the embeddings, completions and
    Responses APIs; None for another path (chat completions, unknown paths)."""
    if path.endswith("/embeddings"):
        return _embeddings(body, model, scenario)
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        return _completions(body, model, scenario)
    if path.endswith("/responses"):
        return _responses(body, model, scenario)
    return None


def is_dialect_path(path: str) -> bool:
    """True for the paths `dialect_reply` answers."""
    return path.endswith(("/embeddings", "/responses")) or (
        path.endswith("/completions") and not path.endswith("/chat/completions")
    )
