"""The embeddings dialect (``/embeddings``): ``data[].embedding``, never streamed.

One request embeds one input or a list of them; the answer's ``data[]`` holds one vector
per input, each with the ``index`` of its input. With ``encoding_format: "base64"`` a vector
is sent as the base64 of its little-endian float32 values, a quarter of the bytes of the
JSON numbers: `decode_embedding` turns it back into floats, and every door hands a base64
answer on decoded (`EmbeddingsDialect.finish_answer`), as the batch runs that ask for it do.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import sys
from array import array
from typing import Any

from ._base import Dialect

__all__ = ["EMBEDDINGS", "EmbeddingsDialect", "decode_embedding"]


_FLOATS = frozenset({float})
_NUMBERS = frozenset({float, int})


def decode_embedding(value: Any) -> list[float]:
    """The floats of an embedding: a list as sent, or a base64 string of float32 values.

    >>> decode_embedding("AACAPwAAAMA=")
    [1.0, -2.0]
    >>> decode_embedding([0.5, 1])
    [0.5, 1.0]
    """
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the embedding is a string that is not base64") from None
        if len(raw) % 4:
            raise ValueError(
                f"the base64 embedding holds {len(raw)} bytes, not a whole number of float32"
            )
        floats = array("f")
        floats.frombytes(raw)
        if sys.byteorder == "big":  # the wire is little-endian whatever the machine
            floats.byteswap()
        return floats.tolist()
    if isinstance(value, list):
        # The types of the items, found in C: a vector is read once a row in a batch run
        # (and again after `finish_answer` decoded it), 64 to 3,072 items each time.
        kinds = set(map(type, value))
        if kinds <= _FLOATS:  # floats already (JSON numbers with a point, or decoded): as is
            return value
        if kinds <= _NUMBERS:  # a bool is no number here (its type is bool, not int)
            return [float(v) for v in value]
    raise ValueError(f"the embedding is a {type(value).__name__}, not a list of numbers")


class _WholeAnswer:
    """An embeddings answer is one JSON object; a server that streams it anyway sends it
    as one event, which is the answer."""

    def __init__(self) -> None:
        self._answer: dict[str, Any] = {}
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        self._answer = chunk

    @property
    def finished(self) -> bool:
        return self.chunks > 0

    def result(self) -> dict[str, Any]:
        return self._answer


class EmbeddingsDialect(Dialect):
    """``/embeddings``: inputs in, one vector each out."""

    name = "embeddings"
    path = "/embeddings"
    label = "embeddings"
    noun = "embeddings requests"
    end_marker = "an answer"
    default_output = ("data", 0, "embedding")
    default_output_name = "embedding"
    streams = False
    asks_stream_usage = False
    answer_field = "data"
    vector_output = "embedding"

    def finishes(self, chunk: dict[str, Any], event: str) -> bool:
        """Every answer is whole."""
        return True

    def assembler(self) -> _WholeAnswer:
        """An assembler that keeps the one answer."""
        return _WholeAnswer()

    def finish_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` with its base64 vectors decoded to floats (a string embedding is only
        ever base64): ``Endpoint.complete`` and ``read`` hand on floats, as batch runs do.
        A vector that does not decode is handed on as the server sent it.

        >>> EMBEDDINGS.finish_answer({"data": [{"index": 0, "embedding": "AACAPw=="}]})
        {'data': [{'index': 0, 'embedding': [1.0]}]}
        """
        data = answer.get("data")
        if not isinstance(data, list) or not any(
            isinstance(item, dict) and isinstance(item.get("embedding"), str) for item in data
        ):
            return answer
        decoded: list[Any] = []
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("embedding"), str):
                # One that does not decode is kept as sent: what the server said is never lost.
                with contextlib.suppress(ValueError):
                    item = {**item, "embedding": decode_embedding(item["embedding"])}
            decoded.append(item)
        return {**answer, "data": decoded}


EMBEDDINGS = EmbeddingsDialect()
