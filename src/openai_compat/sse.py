"""Incremental Server-Sent Events decoding: bytes in, events out, at any split point.

The event-stream format of the HTML Standard, decoded at the bytes level: lines end at CR,
LF or CRLF (``bytes.splitlines`` splits on exactly those three, unlike ``str.splitlines``),
comments, multi-line ``data``, ``event`` and ``id`` (``retry`` is read and ignored: the
connector never reconnects). A line is only turned into text where text is needed, so the
common ``data: {...}`` line costs one slice. On top of the standard we add one leniency real
servers need: a line that is a bare JSON object or array (no ``data:`` field, as JSON-lines
streams and some error bodies are sent) is an event of its own. Events with empty data are
dropped here, so callers never parse them. One byte-order mark at the very start of the
stream is skipped, as the standard says (a later one is not).

>>> decoder = SSEDecoder()
>>> decoder.feed(b'data: {"a": 1}\\n\\nda')
[Event(data='{"a": 1}', event='message', id='')]
>>> decoder.feed(b"ta: [DONE]\\n\\n")
[Event(data='[DONE]', event='message', id='')]
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Event", "RawEvent", "SSEDecoder", "decode_all"]

_BOM = b"\xef\xbb\xbf"
_LF = 10
_CR = 13
_OPEN_BRACE = 123
_OPEN_BRACKET = 91

# One event as the decoder makes it: its data still as UTF-8 bytes, its type and id.
RawEvent = tuple[bytes, str, str]


class Event(NamedTuple):
    """One dispatched event; ``data`` is the joined ``data:`` lines.

    A named tuple rather than a frozen dataclass: one is made per chunk of every stream,
    and a tuple is several times cheaper to create.
    """

    data: str
    event: str = "message"
    id: str = ""


def _text(raw: bytes) -> str:
    # Line ends are ASCII and never inside a UTF-8 sequence, so decoding each value on its
    # own replaces exactly what decoding the whole stream incrementally would.
    return raw.decode("utf-8", "replace")


class SSEDecoder:
    """Feed it the body's bytes as they arrive; it returns the events completed so far.

    Call ``close()`` at the end of the body: a final event not followed by a blank line
    is still dispatched (servers that end the body without one lose nothing).
    """

    __slots__ = ("_cr", "_data", "_event", "_id", "_partial", "_started", "bytes_seen")

    def __init__(self) -> None:
        self._partial = b""  # the start of a line whose end has not come yet
        self._cr = False  # the last piece ended with CR: an LF opening the next one is its pair
        self._started = False  # past the place of the leading byte-order mark
        self._data: list[bytes] = []
        self._event = ""
        self._id = ""
        self.bytes_seen = 0

    def feed(self, chunk: bytes) -> list[Event]:
        """Decode one piece of the body; return the events it completed."""
        return [Event(_text(data), event, id_) for data, event, id_ in self.feed_raw(chunk)]

    def close(self) -> list[Event]:
        """Flush what is buffered at the end of the body."""
        return [Event(_text(data), event, id_) for data, event, id_ in self.close_raw()]

    def feed_raw(self, chunk: bytes) -> list[RawEvent]:
        """``feed``, with each event's data left as bytes (the streaming hot path's form)."""
        self.bytes_seen += len(chunk)
        if self._cr and chunk:
            self._cr = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
        buf = self._partial + chunk if self._partial else chunk
        if not self._started:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._partial = buf  # it may still become the byte-order mark
                return []
            self._started = True
            if buf[:3] == _BOM:
                buf = buf[3:]
        if not buf:
            self._partial = b""
            return []
        lines = buf.splitlines()
        last = buf[-1]
        if last == _LF:
            self._partial = b""
        elif last == _CR:
            self._partial = b""
            self._cr = True
        else:
            self._partial = lines.pop()
        return self._lines(lines)

    def close_raw(self) -> list[RawEvent]:
        """``close``, with each event's data left as bytes."""
        lines = [self._partial] if self._partial else []
        self._partial = b""
        lines.append(b"")  # the end of the body dispatches a pending event
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[RawEvent]:
        # The hot loop of every stream: the common lines (``data: ...`` and the blank line
        # after it) are the first two tests, with no call but one slice.
        events: list[RawEvent] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":
                data.append(line[6:])
            elif not line:
                if data:
                    value = data[0] if len(data) == 1 else b"\n".join(data)
                    if value:
                        events.append((value, self._event or "message", self._id))
                    data = self._data = []
                self._event = ""
            elif line[0] == _OPEN_BRACE or line[0] == _OPEN_BRACKET:
                # Not an SSE field (no field name starts with a bracket): a bare JSON line.
                events.append((line, "message", ""))
            else:
                self._field(line, data)
        return events

    def _field(self, line: bytes, data: list[bytes]) -> None:
        colon = line.find(b":")
        if colon == 0:
            return  # a comment
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            self._event = _text(value)
        elif name == b"id" and b"\0" not in value:  # an id holding NUL is ignored (spec)
            self._id = _text(value)


def decode_all(pieces: list[bytes]) -> list[Event]:
    """Decode a whole body given as pieces (handy for tests and benchmarks)."""
    decoder = SSEDecoder()
    events: list[Event] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events
