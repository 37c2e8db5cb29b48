"""`Reply`, the description of one scripted response, and builders for realistic bodies."""

from __future__ import annotations

import html
import itertools
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Reply",
    "chat_chunks",
    "chat_completion",
    "error_reply",
    "html_reply",
    "json_reply",
    "raw_reply",
    "sse_reply",
]

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream"
# Builders that cut a body at split points pause this long between pieces by default, so the
# client sees separate network reads instead of one coalesced read.
DEFAULT_PIECE_DELAY_S = 0.005

_WORDISH = re.compile(r"\S+\s*|\s+")
_ids = itertools.count(1)


def dumps(obj: Any) -> str:
    """Compact JSON, as OpenAI's own servers send it."""
    return json.dumps(obj, separators=(",", ":"))


def _json_headers() -> dict[str, str]:
    return {"content-type": JSON_CONTENT_TYPE}


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response of the mock server.

    Attributes:
        status: HTTP status code.
        headers: Response headers (names are lower-cased). ``x-request-id`` is added by the
            server; ``content-length`` is added when the body is a single complete piece.
        pieces: The body, each piece sent as a separate ASGI body message (a separate write).
        delay_s: Sleep before sending the status line.
        piece_delay_s: Sleep between pieces.
        stall_s: After the last piece, keep the connection open without finishing the body.
        disconnect: After the pieces (and any stall), abort the connection without completing
            the body, so the client sees a broken (incomplete chunked) response.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=_json_headers)
    pieces: tuple[bytes, ...] = ()
    delay_s: float = 0.0
    piece_delay_s: float = 0.0
    stall_s: float = 0.0
    disconnect: bool = False
    # Encoded once here rather than on every send: replies are often reused in benchmarks.
    raw_headers: tuple[tuple[bytes, bytes], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        object.__setattr__(self, "headers", headers)
        object.__setattr__(self, "pieces", tuple(self.pieces))
        raw = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
        if (
            len(self.pieces) <= 1
            and not self.stall_s
            and not self.disconnect
            and "content-length" not in headers
            and "transfer-encoding" not in headers
        ):
            # A complete single-piece body gets a length like a normal JSON API answer (and
            # avoids chunked framing); streamed or broken bodies stay chunked.
            size = len(self.pieces[0]) if self.pieces else 0
            raw += ((b"content-length", str(size).encode()),)
        object.__setattr__(self, "raw_headers", raw)

    @property
    def body(self) -> bytes:
        """The whole body, all pieces joined."""
        return b"".join(self.pieces)


def _merge_headers(content_type: str, headers: Mapping[str, str] | None) -> dict[str, str]:
    merged = {"content-type": content_type}
    if headers:
        merged.update({k.lower(): v for k, v in headers.items()})
    return merged


def _cut(body: bytes, split_at: Iterable[int] | None) -> tuple[bytes, ...]:
    if not split_at:
        return (body,)
    points = sorted({p for p in split_at if 0 < p < len(body)})
    bounds = [0, *points, len(body)]
    return tuple(body[a:b] for a, b in itertools.pairwise(bounds))


def _piece_delay(split_at: Sequence[int] | None, piece_delay_s: float | None) -> float:
    if piece_delay_s is not None:
        return piece_delay_s
    return DEFAULT_PIECE_DELAY_S if split_at else 0.0


def _new_id(prefix: str) -> str:
    return f"{prefix}-mock{next(_ids):010d}"


def _split_words(text: str) -> list[str]:
    return _WORDISH.findall(text)


def _normalise_tool_calls(tool_calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Accept full OpenAI tool calls or the short form ``{"name": ..., "arguments": ...}``."""
    calls: list[dict[str, Any]] = []
    for i, call in enumerate(tool_calls):
        fn = call.get("function", call)
        args = fn.get("arguments", "")
        if not isinstance(args, str):
            args = dumps(args)
        calls.append(
            {
                "id": call.get("id") or f"call_mock{i:04d}",
                "type": call.get("type", "function"),
                "function": {"name": fn["name"], "arguments": args},
            }
        )
    return calls


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    content: str | None = "Hello!",
    *,
    model: str = "mock-model",
    finish_reason: str | None = "stop",
    usage: bool | Mapping[str, int] = True,
    reasoning: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build a realistic non-streamed ``chat.completion`` object.

    Args:
        content: ``choices[0].message.content`` (``None`` is sent as JSON null).
        model: The ``model`` field.
        finish_reason: ``choices[0].finish_reason``; pass ``"tool_calls"`` with tool calls.
        usage: ``True`` for a computed usage block, ``False`` to omit it, or an explicit dict.
        reasoning: Sent as ``message.reasoning_content`` (vLLM / DeepSeek style).
        tool_calls: Full OpenAI tool calls, or short ``{"name", "arguments"}`` dicts
            (arguments may be a dict; it is JSON-encoded).
    """
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = _normalise_tool_calls(tool_calls)
    obj: dict[str, Any] = {
        "id": _new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if usage is True:
        n = len(_split_words(content or "")) + len(_split_words(reasoning or ""))
        obj["usage"] = _usage(10, max(n, 1))
    elif usage:
        obj["usage"] = dict(usage)
    return obj


def chat_chunks(
    content: str | None = "Hello there, how can I help?",
    *,
    model: str = "mock-model",
    pieces: Sequence[str] | None = None,
    finish_reason: str | None = "stop",
    include_usage: bool = False,
    empty_first: bool = False,
    reasoning: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Build realistic ``chat.completion.chunk`` dicts for one streamed answer.

    Order: optional Azure-style chunk with ``choices: []`` (``empty_first``), a role chunk,
    reasoning pieces (``delta.reasoning_content``), content pieces (``content`` split into
    word-ish pieces, or the given ``pieces``), tool-call fragments (the first fragment of a
    call has index, id, type and name; later ones only pieces of ``function.arguments``), a
    final chunk with ``finish_reason``, and with ``include_usage`` a chunk with
    ``choices: []`` and ``usage`` (every other chunk then has ``usage: null``, as OpenAI
    does).
    """
    chunk_id = _new_id("chatcmpl")
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            c["usage"] = None
        return c

    out: list[dict[str, Any]] = []
    if empty_first:
        out.append(
            {
                "id": "",
                "object": "",
                "created": 0,
                "model": "",
                "choices": [],
                "prompt_filter_results": [
                    {"prompt_index": 0, "content_filter_results": {}},
                ],
            }
        )
    out.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    reasoning_pieces = _split_words(reasoning) if reasoning else []
    for piece in reasoning_pieces:
        out.append(chunk({"reasoning_content": piece}))
    content_pieces = list(pieces) if pieces is not None else _split_words(content or "")
    for piece in content_pieces:
        out.append(chunk({"content": piece}))
    for index, call in enumerate(_normalise_tool_calls(tool_calls or ())):
        args = call["function"]["arguments"]
        head = {
            "index": index,
            "id": call["id"],
            "type": call["type"],
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        out.append(chunk({"tool_calls": [head]}))
        for start in range(0, len(args), 8):
            fragment = {"index": index, "function": {"arguments": args[start : start + 8]}}
            out.append(chunk({"tool_calls": [fragment]}))
    out.append(chunk({}, finish_reason))
    if include_usage:
        n = len(content_pieces) + len(reasoning_pieces)
        last = chunk({})
        last["choices"] = []
        last["usage"] = _usage(10, max(n, 1))
        out.append(last)
    return out


def json_reply(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON response with ``obj`` as the body (one piece, with ``content-length``)."""
    body = dumps(obj).encode()
    return Reply(status=status, headers=_merge_headers(JSON_CONTENT_TYPE, headers), pieces=(body,))


def encode_sse(
    events: Iterable[bytes | str],
    *,
    done: bool = True,
    line_ending: str = "\n",
    comments: bool = False,
    event_separator: str | None = None,
) -> list[bytes]:
    """Serialise already-encoded event payloads; one bytes item per event (and comment)."""
    le = line_ending.encode()
    end = event_separator.encode() if event_separator is not None else le + le
    comment = b": keep-alive" + le + le
    out: list[bytes] = []
    payloads: list[bytes | str] = list(events)
    if done:
        payloads.append(b"[DONE]")
    for payload in payloads:
        if comments:
            out.append(comment)
        data = payload.encode() if isinstance(payload, str) else payload
        # A multi-line payload becomes several `data:` lines, which SSE joins with "\n".
        lines = data.split(b"\n")
        out.append(le.join(b"data: " + line for line in lines) + end)
    return out


def sse_reply(
    events: Sequence[Mapping[str, Any] | str],
    *,
    done: bool = True,
    line_ending: str = "\n",
    split_at: Sequence[int] | None = None,
    comments: bool = False,
    event_separator: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    disconnect: bool = False,
    stall_s: float = 0.0,
    piece_delay_s: float | None = None,
    delay_s: float = 0.0,
) -> Reply:
    """A Server-Sent Events response.

    Each event becomes ``data: <json or str>`` followed by a blank line, ``line_ending`` ending
    every line; a string containing newlines becomes several ``data:`` lines.
    ``event_separator`` replaces the default event terminator (``line_ending * 2``).
    ``comments`` puts a ``: keep-alive`` comment before every event; ``done`` ends with
    ``data: [DONE]``. Without ``split_at`` each event is its own piece (one write per event,
    like real servers); with ``split_at`` the whole body is cut at those byte offsets and
    ``piece_delay_s`` defaults to 5 ms.
    """
    encoded = [e if isinstance(e, str) else dumps(e) for e in events]
    chunks = encode_sse(
        encoded,
        done=done,
        line_ending=line_ending,
        comments=comments,
        event_separator=event_separator,
    )
    pieces = _cut(b"".join(chunks), split_at) if split_at else tuple(chunks)
    return Reply(
        status=status,
        headers=_merge_headers(SSE_CONTENT_TYPE, {"cache-control": "no-cache", **(headers or {})}),
        pieces=pieces,
        delay_s=delay_s,
        piece_delay_s=_piece_delay(split_at, piece_delay_s),
        stall_s=stall_s,
        disconnect=disconnect,
    )


def raw_reply(
    body: bytes | str,
    *,
    status: int = 200,
    content_type: str = "text/plain",
    split_at: Sequence[int] | None = None,
    headers: Mapping[str, str] | None = None,
    piece_delay_s: float | None = None,
    delay_s: float = 0.0,
    stall_s: float = 0.0,
    disconnect: bool = False,
) -> Reply:
    """Arbitrary bytes (HTML pages, bare JSON lines, malformed data), optionally cut."""
    data = body.encode() if isinstance(body, str) else body
    return Reply(
        status=status,
        headers=_merge_headers(content_type, headers),
        pieces=_cut(data, split_at),
        delay_s=delay_s,
        piece_delay_s=_piece_delay(split_at, piece_delay_s),
        stall_s=stall_s,
        disconnect=disconnect,
    )


def error_body(
    message: str,
    *,
    status: int = 400,
    type: str | None = None,
    code: str | int | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The OpenAI error object ``{"error": {message, type, param, code}}``."""
    if type is None:
        type = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_reply(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | int | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An OpenAI-shaped error response.

    ``type`` defaults to ``"server_error"`` for 5xx and ``"invalid_request_error"`` otherwise.
    """
    body = error_body(message, status=status, type=type, code=code, param=param)
    return json_reply(body, status=status, headers=headers)


def html_reply(status: int = 200, title: str = "Login required") -> Reply:
    """An HTML page like the ones gateways, proxies and SSO walls answer with."""
    t = html.escape(title)
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{t}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "</head>\n<body>\n"
        f"<h1>{t}</h1>\n"
        "<p>The page you requested is not available. "
        'Please <a href="/login">sign in</a> or contact your administrator.</p>\n'
        "<hr><address>nginx</address>\n"
        "</body>\n</html>\n"
    )
    return raw_reply(page, status=status, content_type="text/html; charset=utf-8")
