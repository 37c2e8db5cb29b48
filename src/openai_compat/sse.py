"""Incremental Server-Sent Events decoding: bytes in, events out, at any split point.

The spec-correct parts (CR/LF/CRLF line ends, comments, multi-line ``data``, ``event``,
``id``, ``retry``) are httpx-sse's line and field decoders. On top of them we add one
leniency real servers need: a line that is a bare JSON object or array (no ``data:``
field, as JSON-lines streams and some error bodies are sent) is an event of its own.
Events with empty data are dropped here, so callers never parse them. One byte-order mark
at the very start of the stream is skipped, as the standard says (a later one is not).

>>> decoder = SSEDecoder()
>>> decoder.feed(b'data: {"a": 1}\\n\\nda')
[Event(data='{"a": 1}', event='message', id='')]
>>> decoder.feed(b"ta: [DONE]\\n\\n")
[Event(data='[DONE]', event='message', id='')]
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import NamedTuple

from httpx_sse._decoders import SSEDecoder as _FieldDecoder
from httpx_sse._decoders import SSELineDecoder as _LineDecoder

__all__ = ["Event", "SSEDecoder", "decode_all"]


class Event(NamedTuple):
    """One dispatched event; ``data`` is the joined ``data:`` lines.

    A named tuple rather than a frozen dataclass: one is made per chunk of every stream,
    and a tuple is several times cheaper to create.
    """

    data: str
    event: str = "message"
    id: str = ""


class SSEDecoder:
    """Feed it the body's bytes as they arrive; it returns the events completed so far.

    Call ``close()`` at the end of the body: a final event not followed by a blank line
    is still dispatched (servers that end the body without one lose nothing).
    """

    __slots__ = ("_decode", "_fields", "_lines", "_text", "bytes_seen")

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # Until the first text arrives, decoding also strips a leading byte-order mark;
        # then this becomes the plain decoder, so later chunks pay nothing for the check.
        self._decode: Callable[[bytes], str] = self._decode_start
        self._lines = _LineDecoder()
        self._fields = _FieldDecoder()
        self.bytes_seen = 0

    def feed(self, chunk: bytes) -> list[Event]:
        """Decode one piece of the body; return the events it completed."""
        self.bytes_seen += len(chunk)
        text = self._decode(chunk)
        if not text:
            return []
        return self._decode_lines(self._lines.decode(text))

    def close(self) -> list[Event]:
        """Flush what is buffered at the end of the body."""
        lines = self._lines.decode(self._text.decode(b"", final=True)) if self.bytes_seen else []
        lines.extend(self._lines.flush())
        lines.append("")  # the end of the body dispatches a pending event
        return self._decode_lines(lines)

    def _decode_start(self, chunk: bytes) -> str:
        # The incremental decoder holds back a partial character, so a BOM split over
        # several pieces first shows up whole, at the start of the first non-empty text.
        text = self._text.decode(chunk)
        if text:
            self._decode = self._text.decode
            if text[0] == "\ufeff":
                return text[1:]
        return text

    def _decode_lines(self, lines: list[str]) -> list[Event]:
        # The hot loop of every stream: one call per line, locals only.
        events: list[Event] = []
        decode = self._fields.decode
        for line in lines:
            if line[:1] in _BRACKETS:
                # Not an SSE field (no field name starts with a bracket): a bare JSON line.
                events.append(Event(line))
                continue
            sse = decode(line)
            if sse is not None:
                data = sse.data
                if data:
                    events.append(Event(data, sse.event, sse.id))
        return events


_BRACKETS = frozenset("{[")


def decode_all(pieces: list[bytes]) -> list[Event]:
    """Decode a whole body given as pieces (handy for tests and benchmarks)."""
    decoder = SSEDecoder()
    events: list[Event] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events
