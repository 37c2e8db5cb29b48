"""The legacy completions dialect (``/completions``): ``choices[].text``, ``finish_reason``.

A streamed answer is a run of ``text_completion`` objects whose choices carry pieces of
``text``; it is complete once a choice carries a ``finish_reason``, as in chat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._base import Dialect
from ._chat import finishes

__all__ = ["COMPLETIONS", "CompletionsDialect", "TextAssembler"]


class TextAssembler:
    """Merges streamed ``text_completion`` chunks into the object a plain request returns.

    >>> asm = TextAssembler()
    >>> asm.add({"id": "c", "choices": [{"index": 0, "text": "Hel"}]})
    >>> asm.add({"choices": [{"index": 0, "text": "lo", "finish_reason": "stop"}]})
    >>> asm.result()["choices"][0]["text"], asm.finished
    ('Hello', True)
    """

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._texts: dict[int, list[str]] = {}
        self._finish: dict[int, str] = {}
        self._logprobs: dict[int, Any] = {}
        self._usage: Any = None
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        """Merge one chunk (unknown fields are ignored)."""
        self.chunks += 1
        for key in ("id", "created", "model", "system_fingerprint"):
            value = chunk.get(key)
            if value is not None and key not in self._head:
                self._head[key] = value
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", position)
            if not isinstance(index, int):
                index = position
            texts = self._texts.setdefault(index, [])
            text = choice.get("text")
            if isinstance(text, str):
                texts.append(text)
            if choice.get("finish_reason"):
                self._finish[index] = choice["finish_reason"]
            if choice.get("logprobs") is not None:
                self._logprobs[index] = choice["logprobs"]

    @property
    def finished(self) -> bool:
        """True once a chunk gave a choice its ``finish_reason``."""
        return bool(self._finish)

    def result(self) -> dict[str, Any]:
        """The assembled ``text_completion`` object."""
        choices = [
            {
                "index": index,
                "text": "".join(self._texts[index]),
                "logprobs": self._logprobs.get(index),
                "finish_reason": self._finish.get(index),
            }
            for index in sorted(self._texts)
        ]
        result: dict[str, Any] = {"id": self._head.get("id"), "object": "text_completion"}
        for key in ("created", "model", "system_fingerprint"):
            if key in self._head:
                result[key] = self._head[key]
        result["choices"] = choices
        result["usage"] = self._usage
        return result


class CompletionsDialect(Dialect):
    """``/completions``: a prompt in, ``choices[].text`` out (vLLM, llama.cpp, LiteLLM...)."""

    name = "completions"
    path = "/completions"
    label = "completions"
    noun = "completions"
    end_marker = "a finish_reason"
    default_output = ("choices", 0, "text")
    # Streamed rows ask for usage as chat ones do: OpenAI's legacy /v1/completions takes
    # ``stream_options.include_usage`` (a last chunk with empty choices and the usage), as do
    # vLLM, SGLang and llama-server; without it a streamed row's tokens, cost and budget are
    # unknown. A server that does not know the option ignores it.
    asks_stream_usage = True

    def fits_sample(self, sample: Mapping[str, Any]) -> bool:
        """A sample whose first choice has ``text`` (a chat sample's has a message).

        >>> COMPLETIONS.fits_sample({"choices": [{"message": {"content": "x"}}]})
        False
        """
        choices = sample.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        return isinstance(first, Mapping) and "text" in first

    def finishes(self, chunk: dict[str, Any], event: str) -> bool:
        """True when a choice of ``chunk`` carries a ``finish_reason``.

        >>> COMPLETIONS.finishes({"choices": [{"text": "", "finish_reason": "length"}]}, "")
        True
        """
        return finishes(chunk)

    def assembler(self) -> TextAssembler:
        """A new `TextAssembler`."""
        return TextAssembler()


COMPLETIONS = CompletionsDialect()
