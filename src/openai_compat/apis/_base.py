"""``Dialect``: what one OpenAI API's answers look like, behind one small interface.

The request path is the same for every API (a POST, a JSON answer or a stream of JSON
events); what differs is the shape: where the text is, what ends a stream, how a stream's
chunks come together into the answer a non-streamed request returns, and what a wrong URL
usually looks like. Each dialect is a module of this package; nothing else knows a shape.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ._usage import Usage

__all__ = ["Assembler", "Dialect"]


class Assembler(Protocol):
    """Merges a stream's chunks, one by one, into the answer a plain request returns."""

    chunks: int

    def add(self, chunk: dict[str, Any]) -> None:
        """Merge one chunk (unknown fields are ignored)."""

    @property
    def finished(self) -> bool:
        """True once a chunk said the answer is complete."""

    def result(self) -> dict[str, Any]:
        """The assembled answer."""


class Dialect(ABC):
    """One OpenAI API: its path, its end-of-stream rule, its assembler, its usage.

    A subclass names the API (``name``, the ``path`` its URLs end with, the ``label`` that
    messages use) and gives its rules; the hints of wrong URLs and of error statuses are
    worded here once from those names.
    """

    #: The dialect's name in configurations (``"chat"``).
    name: str
    #: What the API's URLs end with (``"/chat/completions"``).
    path: str
    #: How messages call the API (``"chat-completions"``).
    label: str
    #: What its requests are called in a sentence (``"chat completions"``).
    noun: str
    #: What marks a complete answer in a stream, for the cut-off warning.
    end_marker: str
    #: Where the answer's text is, the output of a run that names none.
    default_output: tuple[str | int, ...]
    #: The name of that default output (None: its path, as for chat).
    default_output_name: str | None = None
    #: Whether the API streams (embeddings never do: ``stream`` is not sent).
    streams: bool = True
    #: Whether a stream reports usage only when asked (``stream_options.include_usage``).
    asks_stream_usage: bool = True
    #: The top-level field a sample answer of this API has (a ``response_format`` without
    #: it describes another API's answer, so the default output is used instead).
    answer_field: str = "choices"
    #: The last field of the paths whose values are vectors (None: the API has none).
    vector_output: str | None = None

    @abstractmethod
    def finishes(self, chunk: dict[str, Any], event: str) -> bool:
        """True when ``chunk`` (sent as an SSE event of type ``event``) completes the answer."""

    @abstractmethod
    def assembler(self) -> Assembler:
        """A new assembler for one stream."""

    def fits_sample(self, sample: Mapping[str, Any]) -> bool:
        """Whether a sample answer (``response_format``) is one of this API's; the
        connection's default sample is a chat answer, which fits no other API."""
        return self.answer_field in sample

    def stream_error(self, chunk: dict[str, Any], event: str) -> dict[str, Any] | None:
        """The error object an event of the stream reports in this API's own shape, or
        None (an ``{"error": ...}`` chunk is an error in every API and found before)."""
        return None

    def finish_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        """The answer a door hands on (a dialect may add a convenience field)."""
        return answer

    def usage(self, answer: Mapping[str, Any] | None) -> Usage | None:
        """The token counts an answer reports (None: it reports none)."""
        return Usage.parse(answer.get("usage")) if answer else None

    def cut_off_warning(self, chunks: int) -> str:
        """The warning of a stream that ended with neither ``[DONE]`` nor its end marker."""
        return (
            f"the stream ended after {chunks} chunk(s) with neither [DONE] nor "
            f"{self.end_marker}: it may have been cut off"
        )

    def url_problem(self, url: str) -> str | None:
        """Why ``url`` is probably not this API's URL, or None.

        The URL is always used as given; this only powers the hint of a failed request.
        """
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        root = f"{parts.scheme}://{parts.netloc}"
        if path.endswith(self.path + self.path):
            fixed = root + path[: -len(self.path)]
            return f'the path repeats "{self.path}"; use {fixed}'
        if not path:
            return f"the URL has no path; the full {self.label} URL is {root}/v1{self.path}"
        if path.endswith("/v1"):
            return (
                "the URL looks like a base URL (it ends in /v1); the connector posts to the URL "
                f"as given, so use the full {self.label} URL {root}{path}{self.path}"
            )
        return None

    def status_hint(self, status: int) -> str | None:
        """The hint of an error status that says something about this API's URL or body."""
        if status == 400:
            return (
                f"the endpoint rejected the request body; compare it with the OpenAI "
                f"{self.label} spec"
            )
        if status == 404:
            return f"check that the URL is the full {self.label} URL and that the model exists"
        if status == 405:
            return f"the URL does not accept POST; it is probably not a {self.label} URL"
        return None

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"
