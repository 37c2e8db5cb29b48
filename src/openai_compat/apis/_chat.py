"""The chat-completions dialect (``/chat/completions``): choices, deltas, ``finish_reason``.

A streamed answer is a run of ``chat.completion.chunk`` objects whose choices carry deltas; it
is complete once a choice carries a ``finish_reason``, and its chunks merge into the
``chat.completion`` a plain request returns.
"""

from __future__ import annotations

from typing import Any

from ._base import Dialect

__all__ = ["CHAT", "ChatDialect", "ChunkAssembler"]


def finishes(chunk: dict[str, Any]) -> bool:
    """True when a choice of ``chunk`` carries a ``finish_reason``: the answer is complete.

    >>> finishes({"choices": [{"delta": {}, "finish_reason": "stop"}]})
    True
    """
    choices = chunk.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict) and choice.get("finish_reason"):
                return True
    return False


class _ToolCall:
    __slots__ = ("arguments", "id", "index", "name", "type")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type or "function",
            "function": {"name": self.name, "arguments": "".join(self.arguments)},
        }


class ChunkAssembler:
    """Merges streamed chunks into the ``chat.completion`` a non-streamed request returns.

    Content, refusal and reasoning text are concatenated per choice (reasoning under the
    field name the server streamed it as: ``reasoning_content`` or ``reasoning``); tool
    calls are merged by ``index`` (falling back to ``id``, then to the call currently open,
    for servers that omit or reuse indices); the last non-null ``usage`` wins, and so does the last
    ``finish_reason`` of a chunk that carries something (one with an empty delta never
    overwrites a ``finish_reason`` already given).

    >>> asm = ChunkAssembler()
    >>> asm.add({"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    >>> asm.add({"choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}]})
    >>> asm.result()["choices"][0]["message"]["content"]
    'Hi!'
    """

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: Any = None
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        """Merge one chunk (unknown fields are ignored)."""
        self.chunks += 1
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            value = chunk.get(key)
            if value is not None and key not in self._head:
                self._head[key] = value
        usage = chunk.get("usage")
        if usage:
            self._usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            # A whole message (a server that ignored "stream") is a single final chunk.
            message = chunk.get("message")
            if isinstance(message, dict):
                choices = [{"index": 0, "delta": message, "finish_reason": None}]
            else:
                return
        for position, choice in enumerate(choices):
            if isinstance(choice, dict):
                self._add_choice(position, choice)

    def _add_choice(self, position: int, choice: dict[str, Any]) -> None:
        index = choice.get("index", position)
        if not isinstance(index, int):
            index = position
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = {
                "role": None,
                "content": [],
                "reasoning": [],
                "reasoning_key": None,
                "refusal": [],
                "tools": {},
                "open_tool": None,
                "finish_reason": None,
                "logprobs": None,
                "function_call": None,
            }
        delta: dict[str, Any] = choice.get("delta") or choice.get("message") or {}
        if not isinstance(delta, dict):
            delta = {}
        if delta.get("role"):
            state["role"] = delta["role"]
        has_content = False
        for key, target in (
            ("content", "content"),
            ("refusal", "refusal"),
            ("reasoning_content", "reasoning"),
            ("reasoning", "reasoning"),
        ):
            piece = delta.get(key)
            if isinstance(piece, str) and piece:
                state[target].append(piece)
                has_content = True
                if target == "reasoning" and state["reasoning_key"] is None:
                    # Assembled under the name the server used ("reasoning_content" for
                    # llama.cpp, SGLang, LM Studio; "reasoning" for newer vLLM and Ollama).
                    state["reasoning_key"] = key
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for fragment in tool_calls:
                if isinstance(fragment, dict):
                    self._add_tool_fragment(state, fragment)
                    has_content = True
        function_call = delta.get("function_call")
        if isinstance(function_call, dict):
            has_content = True
            merged = state["function_call"] or {"name": None, "arguments": ""}
            if function_call.get("name"):
                merged["name"] = function_call["name"]
            merged["arguments"] += function_call.get("arguments") or ""
            state["function_call"] = merged
        if choice.get("logprobs") is not None:
            state["logprobs"] = choice["logprobs"]
        finish = choice.get("finish_reason")
        # A chunk that adds nothing (a trailing usage chunk) does not get to overwrite how
        # the answer ended: "length" followed by an empty "stop" is still a truncated answer.
        if finish and (has_content or not state["finish_reason"]):
            state["finish_reason"] = finish

    @staticmethod
    def _add_tool_fragment(state: dict[str, Any], fragment: dict[str, Any]) -> None:
        tools: dict[int, _ToolCall] = state["tools"]
        call_id = fragment.get("id")
        index = fragment.get("index")
        call: _ToolCall | None = None
        if isinstance(index, int):
            call = tools.get(index)
            if call is not None and call_id and call.id and call.id != call_id:
                # A server that reuses index 0 for every call: a new id is a new call.
                call = None
                index = max(tools) + 1
        elif call_id:
            call = next((c for c in tools.values() if c.id == call_id), None)
            if call is None:
                index = len(tools)
        else:
            call = state["open_tool"]
            if call is None:
                index = len(tools)
        if call is None:
            assert isinstance(index, int)
            call = tools[index] = _ToolCall(index)
        state["open_tool"] = call
        if call_id:
            call.id = call_id
        if fragment.get("type"):
            call.type = fragment["type"]
        function = fragment.get("function")
        if isinstance(function, dict):
            if function.get("name"):
                call.name = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                call.arguments.append(arguments)

    @property
    def finished(self) -> bool:
        """True once a chunk gave a choice its ``finish_reason``."""
        return any(state["finish_reason"] for state in self._choices.values())

    def result(self) -> dict[str, Any]:
        """The assembled ``chat.completion`` object."""
        choices = []
        for index in sorted(self._choices):
            state = self._choices[index]
            message: dict[str, Any] = {
                "role": state["role"] or "assistant",
                "content": "".join(state["content"]) if state["content"] else None,
            }
            if state["reasoning"]:
                message[state["reasoning_key"]] = "".join(state["reasoning"])
            if state["refusal"]:
                message["refusal"] = "".join(state["refusal"])
            if state["tools"]:
                message["tool_calls"] = [
                    state["tools"][i].to_dict() for i in sorted(state["tools"])
                ]
            if state["function_call"]:
                message["function_call"] = state["function_call"]
            choice: dict[str, Any] = {
                "index": index,
                "message": message,
                "finish_reason": state["finish_reason"],
            }
            if state["logprobs"] is not None:
                choice["logprobs"] = state["logprobs"]
            choices.append(choice)
        result: dict[str, Any] = {"id": self._head.get("id"), "object": "chat.completion"}
        for key in ("created", "model", "system_fingerprint", "service_tier"):
            if key in self._head:
                result[key] = self._head[key]
        result["choices"] = choices
        result["usage"] = self._usage
        return result


class ChatDialect(Dialect):
    """``/chat/completions``: the API every compatible server speaks."""

    name = "chat"
    path = "/chat/completions"
    label = "chat-completions"
    noun = "chat completions"
    end_marker = "a finish_reason"
    default_output = ("choices", 0, "message", "content")

    def finishes(self, chunk: dict[str, Any], event: str) -> bool:
        """True when a choice of ``chunk`` carries a ``finish_reason`` (the event type is
        not used: chat streams send every chunk as a plain ``message`` event).

        >>> CHAT.finishes({"choices": [{"delta": {}, "finish_reason": "stop"}]}, "message")
        True
        """
        return finishes(chunk)

    def assembler(self) -> ChunkAssembler:
        """A new `ChunkAssembler`."""
        return ChunkAssembler()


CHAT = ChatDialect()
