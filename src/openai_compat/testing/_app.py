"""The mock OpenAI-compatible server: a raw ASGI app (no framework, for speed).

Default behaviour (no scripted replies queued)
---------------------------------------------
``POST .../chat/completions`` (any prefix) answers like an OpenAI-compatible server:

- the answer is ``"You said: <text of the last user message>"`` (deterministic);
- ``"stream": true`` in the body gives Server-Sent Events (``chat.completion.chunk`` objects,
  one write per event, then ``data: [DONE]``); a final usage chunk with ``choices: []`` is
  sent only when the body has ``"stream_options": {"include_usage": true}``;
- otherwise a ``chat.completion`` JSON object with ``usage``;
- the response ``model`` echoes the requested model;
- a body that is not a JSON object gives 400, a body without ``model`` gives 400
  ``you must provide a model parameter`` (``param: "model"``).

``GET .../models`` lists ``mock-model``. Other paths answer 404 ``Not found``; other methods on
the chat path answer 405. Every response has an ``x-request-id: req_<n>`` header. When the
server has an API key, a request whose ``Authorization: Bearer`` token differs gets 401
``invalid_api_key`` (the received key is never echoed).

Scenarios (query parameters, so a server in another process is scriptable by URL)
-------------------------------------------------------------------------------
``?scenario=NAME`` on the request URL selects a behaviour:

==================  ==========================================================================
``normal``          the default behaviour above
``stream``          always SSE, whatever the body says
``crlf``            SSE with CRLF line endings
``comments``        SSE with a ``: keep-alive`` comment before every event
``no-done``         SSE without the final ``data: [DONE]``
``split``           SSE body cut into 1-7 byte pieces (``piece_delay_ms``, default 1, between)
``error-in-200``    200 JSON ``{"error": {...}}``
``error-in-stream`` SSE: two chunks, then ``data: {"error": {...}}``, then ``[DONE]``
``401``             401 ``invalid_api_key``
``403``             403 ``permission_error``
``404``             404 ``model_not_found``
``429``             429 ``rate_limit_exceeded`` with ``retry-after: 1``, ``retry-after-ms: 20``
``500``             500 ``server_error``
``502-html``        502 with an HTML gateway page
``503-text``        503 with a plain-text body
``detail``          422 ``{"detail": [...]}`` (FastAPI style)
``string-error``    400 ``{"error": "<text>"}``
``html-200``        200 with an HTML login page
``stall``           SSE: two chunks, then hang ``stall_s`` seconds (default 30) before finishing
``disconnect``      SSE: two chunks, then the connection is dropped mid-body
``slow``            sleep ``delay_s`` seconds (default 1), then the default behaviour
``structured``      a schema-valid answer to the schema the request asks for (see `_structured`)
==================  ==========================================================================

``latency_ms=N`` on any request adds N milliseconds before the answer. An unknown scenario or
a non-numeric parameter gives 400. Body validation (JSON, ``model``) applies to the streaming
scenarios and ``slow``; the error scenarios answer whatever the request.

Scripted replies (``MockServer.enqueue``) take precedence over all of this, for any path and
method; only the API-key check runs before them.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ._dialects import DIALECT_SCENARIOS, dialect_reply, is_dialect_path
from ._limits import ProviderLimits, Slots, embeddings_usage, request_usage
from ._replies import (
    JSON_CONTENT_TYPE,
    SSE_CONTENT_TYPE,
    Reply,
    _cut,
    chat_chunks,
    chat_completion,
    dumps,
    encode_sse,
    error_body,
    error_reply,
    html_reply,
    json_reply,
    raw_reply,
)
from ._structured import StructuredScenario

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_RECORDED = 100_000


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the mock server received.

    ``headers`` has lower-cased names (the last value wins for repeated headers), ``query``
    the decoded query parameters, ``json`` the parsed body or ``None`` when it is not JSON.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    json: Any = None
    # When it arrived (``time.monotonic()``).
    at: float = 0.0


class DropConnection(Exception):
    """Raised inside the app after the response started, so uvicorn aborts the connection."""


_API_KEY_ERROR = error_reply(401, "Incorrect API key provided: sk-***", code="invalid_api_key")
_NOT_FOUND = error_reply(404, "Not found")
_METHOD_NOT_ALLOWED = error_reply(405, "Method not allowed", headers={"allow": "POST"})
_BAD_JSON = error_reply(
    400,
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't"
    " using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
)
_NO_MODEL = error_reply(400, "you must provide a model parameter", param="model")
_MODELS = json_reply(
    {
        "object": "list",
        "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}],
    }
)

_STATIC_SCENARIOS: dict[str, Reply] = {
    "401": _API_KEY_ERROR,
    "403": error_reply(
        403,
        "You are not allowed to sample from this model",
        type="permission_error",
        code="forbidden",
    ),
    "404": error_reply(
        404,
        "The model `mock-model` does not exist or you do not have access to it.",
        code="model_not_found",
    ),
    "429": error_reply(
        429,
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": "1", "retry-after-ms": "20"},
    ),
    "500": error_reply(
        500, "The server had an error while processing your request. Sorry about that!"
    ),
    "502-html": html_reply(502, "502 Bad Gateway"),
    "503-text": raw_reply(
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        status=503,
    ),
    "detail": json_reply(
        {
            "detail": [
                {
                    "type": "missing",
                    "loc": ["body", "messages"],
                    "msg": "Field required",
                    "input": None,
                }
            ]
        },
        status=422,
    ),
    "string-error": json_reply(
        {"error": "model 'mock-model' not found, try pulling it first"}, status=400
    ),
    "html-200": html_reply(200, "Login required"),
    "error-in-200": json_reply(
        {
            "error": {
                "message": "Provider returned error",
                "type": "server_error",
                "param": None,
                "code": 502,
            }
        }
    ),
}
_STREAM_SCENARIOS = frozenset(
    {"stream", "crlf", "comments", "no-done", "split", "error-in-stream", "stall", "disconnect"}
)
_DEFAULT_SCENARIOS = frozenset({"normal", "slow", "structured"})

_STREAM_ERROR_EVENT = dumps(error_body("The model produced invalid content.", status=500)).encode()

_JSON_HEADER = (b"content-type", JSON_CONTENT_TYPE.encode())
_SSE_HEADERS = ((b"content-type", SSE_CONTENT_TYPE.encode()), (b"cache-control", b"no-cache"))


def _bad_param(name: str) -> Reply:
    return error_reply(400, f"Invalid value for query parameter {name!r}", param=name)


def _user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
            return ""
    return ""


def _strip_id(obj: dict[str, Any]) -> bytes:
    """JSON of ``obj`` without id, object and created, to follow a per-request prefix."""
    rest = {k: v for k, v in obj.items() if k not in ("id", "object", "created")}
    return dumps(rest).encode()[1:]


# Bodies are cached without id/created so repeated prompts (benchmarks) cost a dict lookup and
# a join, while every response still gets its own id and a current timestamp.
@functools.lru_cache(maxsize=4096)
def _completion_tail(text: str, model: str) -> bytes:
    return _strip_id(chat_completion(text, model=model))


@functools.lru_cache(maxsize=4096)
def _chunk_tails(text: str, model: str, include_usage: bool) -> tuple[bytes, ...]:
    return tuple(_strip_id(c) for c in chat_chunks(text, model=model, include_usage=include_usage))


def _prefix(number: int, kind: bytes) -> bytes:
    return b'{"id":"chatcmpl-mock-%d","object":"%s","created":%d,' % (number, kind, time.time())


async def send_reply(send: Send, reply: Reply, request_id: bytes) -> None:
    """Send ``reply`` over ASGI, honouring its delays, stall and disconnect."""
    if reply.delay_s > 0:
        await asyncio.sleep(reply.delay_s)
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [*reply.raw_headers, (b"x-request-id", request_id)],
        }
    )
    pieces = reply.pieces
    # The last piece can close the body in the same write unless the body must stay open.
    keep_open = reply.stall_s > 0 or reply.disconnect
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        if i and reply.piece_delay_s > 0:
            await asyncio.sleep(reply.piece_delay_s)
        more = keep_open or i != last
        await send({"type": "http.response.body", "body": piece, "more_body": more})
    if reply.stall_s > 0:
        await asyncio.sleep(reply.stall_s)
    if reply.disconnect:
        raise DropConnection
    if keep_open or not pieces:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _too_many(send: Send, wait: float, headers: list[tuple[bytes, bytes]]) -> None:
    """A provider's 429 over its limit: ``headers`` and when to come back (``wait`` s)."""
    message = "Rate limit reached: please try again later."
    body = dumps(error_body(message, status=429, code="rate_limit_exceeded")).encode()
    headers = [
        *headers,
        (b"retry-after", b"%d" % max(1, -(-wait // 1))),
        (b"retry-after-ms", b"%d" % max(1, -(-wait * 1000 // 1))),
    ]
    await _send_body(send, 429, headers, body)


async def _send_body(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class MockApp:
    """The ASGI callable behind `MockServer`; see the module docstring for its behaviour."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        latency_s: float = 0.0,
        limits: ProviderLimits | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency_s = latency_s
        # A rate-limited provider and a capacity-limited server (`_limits`); None: neither.
        self.limits = limits
        self.slots = slots
        self._expected_auth = f"Bearer {api_key}" if api_key is not None else None
        self._queue: deque[Reply] = deque()
        self._records: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._structured = StructuredScenario()

    # -- scripting API (called from any thread) ------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._records.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- ASGI ---------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return

        message = await receive()
        body: bytes = message.get("body", b"")
        if message.get("more_body"):
            parts = [body]
            while message.get("more_body"):
                message = await receive()
                parts.append(message.get("body", b""))
            body = b"".join(parts)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        raw_query: bytes = scope["query_string"]
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        method: str = scope["method"]
        path: str = scope["path"]
        record = RecordedRequest(method, path, query, headers, body, parsed, time.monotonic())
        number = next(self._ids)
        rid = b"req_%d" % number
        # Auth is checked before the queue so a scripted reply cannot mask a bad key, and an
        # unauthorised request does not consume a reply meant for the next one.
        authorised = (
            self._expected_auth is None or headers.get("authorization") == self._expected_auth
        )
        with self._lock:
            self._records.append(record)
            reply = self._queue.popleft() if authorised and self._queue else None
        if not authorised:
            await send_reply(send, _API_KEY_ERROR, rid)
            return

        delay = self.latency_s
        if query:
            latency_ms = query.get("latency_ms")
            if latency_ms is not None:
                try:
                    delay += float(latency_ms) / 1000
                except ValueError:
                    await send_reply(send, _bad_param("latency_ms"), rid)
                    return
        if delay > 0:
            await asyncio.sleep(delay)

        if reply is not None:
            await send_reply(send, reply, rid)
            return
        limited = self.limits is not None or self.slots is not None
        if (
            limited
            and path.endswith("/chat/completions")
            and await self._limited(send, parsed, number, rid)
        ):
            return
        if (
            self.limits is not None
            and path.endswith("/embeddings")
            and await self._refused(send, embeddings_usage(parsed), rid)
        ):
            return
        scenario = query.get("scenario", "normal") if query else "normal"
        await self._default(send, method, path, query, scenario, parsed, number, rid)

    async def _refused(self, send: Send, tokens: int, rid: bytes) -> bool:
        """Under ``--limit-*``, a request of ``tokens`` answered 429 when over the limit
        (True); else counted, to be answered as usual (False)."""
        assert self.limits is not None
        wait, said = self.limits.admit(tokens)
        if wait <= 0:
            return False
        await _too_many(send, wait, [_JSON_HEADER, (b"x-request-id", rid), *said])
        return True

    async def _limited(self, send: Send, parsed: Any, number: int, rid: bytes) -> bool:
        """A chat request under ``--limit-*`` or ``--slots``; False: answer it as usual."""
        if not isinstance(parsed, dict) or not isinstance(parsed.get("model"), str):
            return False
        if parsed.get("stream") is True and self.limits is not None:
            return False  # streamed answers keep the default behaviour (no headers)
        headers: list[tuple[bytes, bytes]] = [_JSON_HEADER, (b"x-request-id", rid)]
        prompt, completion = request_usage(parsed)
        if self.limits is not None:
            wait, said = self.limits.admit(prompt + completion)
            headers += said
            if wait > 0:
                await _too_many(send, wait, headers)
                return True
        if self.slots is not None:
            await self.slots.serve()
        if parsed.get("stream") is True:
            return False
        answer = chat_completion(
            "You said: " + _user_text(parsed),
            model=parsed["model"],
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        )
        answer["id"] = f"chatcmpl-mock-{number}"
        await _send_body(send, 200, headers, dumps(answer).encode())
        return True

    async def _default(
        self,
        send: Send,
        method: str,
        path: str,
        query: dict[str, str],
        scenario: str,
        parsed: Any,
        number: int,
        rid: bytes,
    ) -> None:
        static = _STATIC_SCENARIOS.get(scenario)
        if static is not None:
            await send_reply(send, static, rid)
            return
        if scenario == "structured" and path.endswith("/responses") and isinstance(parsed, dict):
            named = str(parsed.get("model") or "mock-model")
            await send_reply(send, self._structured.reply_responses(parsed, query, named), rid)
            return
        if is_dialect_path(path):
            await send_reply(send, _other_api(method, path, scenario, parsed), rid)
            return
        if scenario not in _STREAM_SCENARIOS and scenario not in _DEFAULT_SCENARIOS:
            reply = error_reply(400, f"Unknown mock scenario {scenario!r}", param="scenario")
            await send_reply(send, reply, rid)
            return

        if not path.endswith("/chat/completions"):
            if method == "GET" and path.endswith("/models"):
                await send_reply(send, _MODELS, rid)
            else:
                await send_reply(send, _NOT_FOUND, rid)
            return
        if method != "POST":
            await send_reply(send, _METHOD_NOT_ALLOWED, rid)
            return
        if not isinstance(parsed, dict):
            await send_reply(send, _BAD_JSON, rid)
            return
        model = parsed.get("model")
        if not isinstance(model, str) or not model:
            await send_reply(send, _NO_MODEL, rid)
            return

        if scenario == "slow":
            try:
                await asyncio.sleep(float(query.get("delay_s", "1")))
            except ValueError:
                await send_reply(send, _bad_param("delay_s"), rid)
                return

        if scenario == "structured":
            await send_reply(send, self._structured.reply(parsed, query, model), rid)
            return
        text = "You said: " + _user_text(parsed)
        stream = parsed.get("stream") is True
        if scenario in _DEFAULT_SCENARIOS and not stream:
            payload = _prefix(number, b"chat.completion") + _completion_tail(text, model)
            await _send_body(send, 200, [_JSON_HEADER, (b"x-request-id", rid)], payload)
            return

        options = parsed.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        prefix = _prefix(number, b"chat.completion.chunk")
        events = [prefix + tail for tail in _chunk_tails(text, model, include_usage)]
        if scenario in _DEFAULT_SCENARIOS or scenario == "stream":
            await _send_events(send, rid, [b"data: " + e + b"\n\n" for e in events])
            return
        await send_reply(send, _stream_scenario(scenario, events, query), rid)


def _other_api(method: str, path: str, scenario: str, parsed: Any) -> Reply:
    """The answer of the embeddings, completions and Responses paths (`_dialects`)."""
    if scenario not in DIALECT_SCENARIOS:
        return error_reply(400, f"Unknown mock scenario {scenario!r}", param="scenario")
    if method != "POST":
        return _METHOD_NOT_ALLOWED
    if not isinstance(parsed, dict):
        return _BAD_JSON
    model = parsed.get("model")
    if not isinstance(model, str) or not model:
        return _NO_MODEL
    reply = dialect_reply(path, parsed, model, scenario)
    assert reply is not None
    return reply


async def _send_events(send: Send, rid: bytes, pieces: list[bytes]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_SSE_HEADERS, (b"x-request-id", rid)],
        }
    )
    for piece in pieces:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


def _stream_scenario(scenario: str, events: list[bytes], query: dict[str, str]) -> Reply:
    headers = {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"}
    if scenario == "crlf":
        return Reply(headers=headers, pieces=tuple(encode_sse(events, line_ending="\r\n")))
    if scenario == "comments":
        return Reply(headers=headers, pieces=tuple(encode_sse(events, comments=True)))
    if scenario == "no-done":
        return Reply(headers=headers, pieces=tuple(encode_sse(events, done=False)))
    if scenario == "split":
        try:
            delay = float(query.get("piece_delay_ms", "1")) / 1000
        except ValueError:
            return _bad_param("piece_delay_ms")
        body = b"".join(encode_sse(events))
        # Seeded so a failing client test sees the same cuts on every run.
        rng = random.Random(len(body))
        points = list(itertools.accumulate(rng.randint(1, 7) for _ in range(len(body))))
        return Reply(headers=headers, pieces=_cut(body, points), piece_delay_s=delay)
    if scenario == "error-in-stream":
        pieces = tuple(encode_sse([*events[:2], _STREAM_ERROR_EVENT]))
        return Reply(headers=headers, pieces=pieces)
    if scenario == "stall":
        try:
            stall_s = float(query.get("stall_s", "30"))
        except ValueError:
            return _bad_param("stall_s")
        pieces = tuple(encode_sse(events[:2], done=False))
        return Reply(headers=headers, pieces=pieces, stall_s=stall_s)
    # disconnect
    pieces = tuple(encode_sse(events[:2], done=False))
    return Reply(headers=headers, pieces=pieces, disconnect=True)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["DropConnection", "MockApp", "RecordedRequest", "send_reply"]
