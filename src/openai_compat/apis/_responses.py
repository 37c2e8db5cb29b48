"""The Responses dialect (``/responses``): typed events, ``output[]`` items, ``output_text``.

A streamed answer is a run of typed events (``event:`` lines, and ``type`` in every data
object): ``response.created``, items and content parts added, ``response.output_text.delta``,
``response.reasoning_text.delta``, ``response.function_call_arguments.delta``, and one terminal
event, ``response.completed``, ``response.incomplete`` or ``response.failed``, whose
``response`` is the whole answer. An ``error`` event, or ``response.failed``, is an error in
the stream, as ``{"error": ...}`` is in chat. A stream without a terminal event was cut off.
"""

from __future__ import annotations

from typing import Any

from ._base import Dialect

__all__ = ["RESPONSES", "EventAssembler", "ResponsesDialect", "output_text"]

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_STATUS = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}


def _type(chunk: dict[str, Any], event: str) -> str:
    kind = chunk.get("type")
    return kind if isinstance(kind, str) else event


def output_text(response: dict[str, Any]) -> str | None:
    """The text of every ``output_text`` part of a response's message items, joined (the
    SDKs' ``output_text`` property); None when it has none.

    >>> output_text({"output": [{"type": "message", "content": [
    ...     {"type": "output_text", "text": "Hi"}, {"type": "output_text", "text": "!"}]}]})
    'Hi!'
    """
    output = response.get("output")
    if not isinstance(output, list):
        return None
    texts: list[str] = []
    for item in output:
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            continue
        content = item.get("content")
        for part in content if isinstance(content, list) else ():
            if (
                isinstance(part, dict)
                and part.get("type") == "output_text"
                and isinstance(part.get("text"), str)
            ):
                texts.append(part["text"])
    return "".join(texts) if texts else None


def _given_index(chunk: dict[str, Any], key: str) -> int | None:
    value = chunk.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _index(chunk: dict[str, Any], key: str) -> int:
    found = _given_index(chunk, key)
    return 0 if found is None else found


class EventAssembler:
    """Merges a Responses event stream into the ``response`` object a plain request returns.

    The terminal event's ``response`` is the answer when it holds the output; a server that
    omits it (or sends it without ``output``) gets the answer built from the deltas.

    >>> asm = EventAssembler()
    >>> asm.add({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    >>> asm.add({"type": "response.output_text.delta", "output_index": 0, "delta": "Hi"})
    >>> asm.add({"type": "response.completed", "response": {"id": "r1", "status": "completed"}})
    >>> output_text(asm.result()), asm.result()["status"], asm.finished
    ('Hi', 'completed', True)
    """

    def __init__(self) -> None:
        self._response: dict[str, Any] = {}
        self._final: dict[str, Any] | None = None
        self._status: str | None = None
        self._items: dict[int, dict[str, Any]] = {}
        self._done_items: dict[int, dict[str, Any]] = {}
        # (output index, content index) -> pieces of text; output index -> argument pieces.
        self._texts: dict[tuple[int, int], list[str]] = {}
        self._reasoning: dict[tuple[int, int], list[str]] = {}
        self._arguments: dict[int, list[str]] = {}
        # Item id -> output index: servers that leave output_index out (llama.cpp) name
        # the item of each event by its id.
        self._ids: dict[str, int] = {}
        self.chunks = 0

    def add(self, chunk: dict[str, Any], event: str = "") -> None:
        """Merge one event's object (unknown types are ignored)."""
        self.chunks += 1
        kind = _type(chunk, event)
        response = chunk.get("response")
        if isinstance(response, dict):
            self._response.update({k: v for k, v in response.items() if v is not None})
            if kind in _TERMINAL:
                self._final = response
        if kind in _TERMINAL:
            self._status = _STATUS[kind]
            return
        if kind == "response.output_item.added":
            item = chunk.get("item")
            if isinstance(item, dict):
                self._items[self._output_index(chunk, item.get("id"), new=True)] = dict(item)
        elif kind == "response.output_item.done":
            item = chunk.get("item")
            if isinstance(item, dict):
                self._done_items[self._output_index(chunk, item.get("id"))] = item
        elif kind == "response.output_text.delta":
            self._piece(self._texts, chunk, "message")
        elif kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            self._piece(self._reasoning, chunk, "reasoning")
        elif kind == "response.function_call_arguments.delta":
            delta = chunk.get("delta")
            if isinstance(delta, str):
                output_index = self._output_index(chunk, chunk.get("item_id"))
                self._items.setdefault(output_index, {"type": "function_call"})
                self._arguments.setdefault(output_index, []).append(delta)

    def _piece(
        self, into: dict[tuple[int, int], list[str]], chunk: dict[str, Any], item_type: str
    ) -> None:
        delta = chunk.get("delta")
        if not isinstance(delta, str):
            return
        output_index = self._output_index(chunk, chunk.get("item_id"))
        self._items.setdefault(output_index, {"type": item_type, "role": "assistant"})
        into.setdefault((output_index, _index(chunk, "content_index")), []).append(delta)

    def _output_index(self, chunk: dict[str, Any], item_id: Any, *, new: bool = False) -> int:
        """The event's ``output_index``, else its item's (by id), else a new item's (for
        an item added) or the last one's."""
        index = _given_index(chunk, "output_index")
        if index is None and isinstance(item_id, str):
            index = self._ids.get(item_id)
        if index is None:
            known = self._items.keys() | self._done_items.keys()
            index = (max(known) + 1 if new else max(known)) if known else 0
        if isinstance(item_id, str):
            self._ids.setdefault(item_id, index)
        return index

    @property
    def finished(self) -> bool:
        """True once a terminal event came (completed, incomplete or failed)."""
        return self._status is not None

    def _built_output(self) -> list[dict[str, Any]]:
        output = []
        for index in sorted(self._items.keys() | self._done_items.keys()):
            done = self._done_items.get(index)
            if done is not None:
                output.append(done)
                continue
            item = dict(self._items[index])
            kind = item.get("type")
            if kind == "function_call":
                item["arguments"] = "".join(self._arguments.get(index, ()))
            else:
                pieces = self._texts if kind == "message" else self._reasoning
                part_type = "output_text" if kind == "message" else "reasoning_text"
                item["content"] = [
                    {"type": part_type, "text": "".join(texts)}
                    | ({"annotations": []} if kind == "message" else {})
                    for (at, _), texts in sorted(pieces.items())
                    if at == index
                ]
            output.append(item)
        return output

    def result(self) -> dict[str, Any]:
        """The assembled ``response`` object."""
        final = self._final
        if final is not None and isinstance(final.get("output"), list) and final["output"]:
            return final
        answer: dict[str, Any] = {"object": "response", **self._response}
        if self._status is not None:
            answer["status"] = self._status
        answer["output"] = self._built_output()
        return answer


class ResponsesDialect(Dialect):
    """``/responses``: OpenAI's newer API (vLLM, SGLang, llama.cpp, Ollama, LiteLLM...)."""

    name = "responses"
    path = "/responses"
    label = "Responses"
    noun = "Responses requests"
    end_marker = "a response.completed event"
    default_output = ("output_text",)
    asks_stream_usage = False
    answer_field = "output"

    def finishes(self, chunk: dict[str, Any], event: str) -> bool:
        """True for a terminal event.

        >>> RESPONSES.finishes({"type": "response.completed", "response": {}}, "")
        True
        """
        return _type(chunk, event) in _TERMINAL

    def stream_error(self, chunk: dict[str, Any], event: str) -> dict[str, Any] | None:
        """The error of an ``error`` event or of ``response.failed``.

        >>> RESPONSES.stream_error({"type": "error", "code": "x", "message": "m"}, "error")
        {'message': 'm', 'code': 'x'}
        """
        kind = _type(chunk, event)
        if kind == "error":
            return {
                "message": chunk.get("message") or "the server sent an error event",
                "code": chunk.get("code"),
            }
        if kind == "response.failed":
            response = chunk.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            if isinstance(error, dict) and error:
                return {"message": error.get("message") or "the response failed", **error}
            return {"message": "the response failed (the server gave no reason)", "code": None}
        return None

    def assembler(self) -> EventAssembler:
        """A new `EventAssembler`."""
        return EventAssembler()

    def finish_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The answer with ``output_text`` (the text of its ``output_text`` parts) added."""
        if "output_text" in answer or not isinstance(answer.get("output"), list):
            return answer
        return {**answer, "output_text": output_text(answer)}


RESPONSES = ResponsesDialect()
