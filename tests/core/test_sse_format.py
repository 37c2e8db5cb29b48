"""The event-stream format cases of the web-platform-tests ``eventsource/`` suite.

Each ``format-*`` test there serves one body and checks what the browser dispatches; the
bodies below are those (the suite's server ends each message with ``"\\n\\n"`` and then
``"\\n"``, or with ``"\\n"`` alone under ``newline=none``, and that tail is spelled out
here). ``spec`` is what the HTML Standard's event-stream interpretation dispatches. Where
our decoder departs from it on purpose, ``ours`` says what it does instead and ``why`` says
why. Every case is fed whole, split in two at every byte offset, and one byte at a time.

The ``retry`` cases only check that the field does not disturb the events: the decoder
does not surface ``retry``, because the connector never reconnects a stream.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from openai_compat.sse import Event, SSEDecoder, decode_all

BOM = "\ufeff".encode()


class Case(NamedTuple):
    body: bytes
    spec: list[Event]
    ours: list[Event] | None = None
    why: str = ""

    @property
    def expected(self) -> list[Event]:
        return self.spec if self.ours is None else self.ours


def e(data: str, event: str = "message", id: str = "") -> Event:
    return Event(data, event, id)


_LONG = "x" * 512  # the suite uses 2 KB comments; shorter keeps 3 feeds per offset quick

CASES: dict[str, Case] = {
    # format-bom: one leading BOM is skipped; a BOM later on is part of the field name.
    "bom": Case(BOM + b"data:1\n\n" + BOM + b"data:2\n\ndata:3\n\n\n", [e("1"), e("3")]),
    # format-bom-2: only one BOM is skipped; the second spoils the first line.
    "double-bom": Case(BOM + BOM + b"data:1\n\ndata:2\n\ndata:3\n\n\n", [e("2"), e("3")]),
    # format-newlines: CRLF, LF and a CRLF split over the message's end, mixed.
    "mixed-newlines": Case(b"data:test\r\ndata\ndata:test\r\n\r\n", [e("test\n\ntest")]),
    # Spec rule: CR alone ends a line too.
    "cr-only": Case(b"data:a\rdata:b\r\rdata:c\r\r", [e("a\nb"), e("c")]),
    # format-leading-space: only one space after the colon is removed, a tab is kept.
    "leading-space": Case(b"data:\ttest\rdata: \ndata:test\n\n\n", [e("\ttest\n\ntest")]),
    # format-field-data: "data" without a colon is a data line with an empty value.
    "field-data": Case(
        b"data:\n\ndata\ndata\n\ndata:test\n\n\n",
        spec=[e(""), e("\n"), e("test")],
        ours=[e("\n"), e("test")],
        why="events with empty data are dropped: callers would only skip them",
    ),
    # format-field-parsing: field names are case-sensitive and exact; NUL is data.
    "field-parsing": Case(
        b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\n"
        b"data:3\rdata:\r\n data:32\ndata:4\n\n",
        [e("\0\n 2\n1\n3\n\n4")],
    ),
    # format-field-unknown: unknown fields, lines without a colon, comments are ignored.
    "field-unknown": Case(
        b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n",
        [e("test\n\ntest")],
    ),
    # format-comments: comments of any length, ended by CR, LF or CRLF.
    "comments": Case(
        f"data:1\r:\0\n:\r\ndata:2\n:{_LONG}\rdata:3\n:data:fail\r:{_LONG}\ndata:4\n\n".encode(),
        [e("1\n2\n3\n4")],
    ),
    # format-field-event and format-field-event-empty: an empty type means "message".
    "field-event": Case(b"event:test\ndata:x\n\ndata:x\n\n\n", [e("x", "test"), e("x")]),
    "field-event-empty": Case(b"event: \ndata:data\n\n\n", [e("data")]),
    # format-null-character.
    "null-character": Case(b"data:\0\n\n\n", [e("\0")]),
    # format-field-retry, -retry-bogus, -retry-empty: retry lines leave the data alone.
    "retry": Case(b"retry:03000\ndata:x\n\n\n", [e("x")]),
    "retry-bogus": Case(b"retry:3000\nretry:1000x\ndata:x\n\n\n", [e("x")]),
    "retry-empty": Case(b"retry\ndata:test\n\n\n", [e("test")]),
    # format-field-id (its server's first answer): a non-ASCII id.
    "field-id": Case("id: …\nretry: 200\ndata: hello\n\n".encode(), [e("hello", id="…")]),
    # format-field-id-3: the id persists across events, and "id:" or "id" resets it.
    "id-persists": Case(
        b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [e("1", id="1"), e("2", id="2"), e("3", id="2")],
    ),
    "id-resets": Case(
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [e("1", id="1"), e("2"), e("3")],
    ),
    "id-resets-without-colon": Case(
        b"id: 1\ndata: 1\n\nid\ndata:2\n\ndata:3\n\n",
        [e("1", id="1"), e("2"), e("3")],
    ),
    # format-data-before-final-empty-line: the body ends without the blank line.
    "data-before-final-empty-line": Case(
        b"retry:1000\ndata:test1\n\nid:test\ndata:test2\n",
        spec=[e("test1")],
        ours=[e("test1"), e("test2", id="test")],
        why="a final event without the blank line is still dispatched when the body ends: "
        "servers that close the body right after the last event lose nothing",
    ),
    # Not from the suite: our own leniency for bare JSON lines.
    "bare-json-line": Case(
        b'{"a": 1}\ndata: 2\n\n[3]\n',
        spec=[e("2")],
        ours=[e('{"a": 1}'), e("2"), e("[3]")],
        why="a line that is a bare JSON object or array is an event of its own (JSON-lines "
        "streams, error bodies sent without framing); no field name starts with a bracket",
    ),
}

# format-field-id-null: an id containing NUL is ignored (the last event id stays as it was).
for _n, _value in enumerate(["\0\0", "x\0", "\0x", "x\0x", " \0"]):
    _body = f"id: {_value}\ndata: hello\n\nid: 1\ndata: a\n\nid: {_value}\ndata: b\n\n"
    CASES[f"id-null-{_n}"] = Case(_body.encode(), [e("hello"), e("a", id="1"), e("b", id="1")])

NAMES = sorted(CASES)


def test_every_departure_from_the_standard_says_why() -> None:
    for name, case in CASES.items():
        assert (case.ours is None) == (not case.why), name
        assert case.ours != case.spec, name


@pytest.mark.parametrize("name", NAMES)
def test_whole_body(name: str) -> None:
    case = CASES[name]
    assert decode_all([case.body]) == case.expected


@pytest.mark.parametrize("name", NAMES)
def test_split_in_two_at_every_offset(name: str) -> None:
    case = CASES[name]
    for cut in range(1, len(case.body)):
        got = decode_all([case.body[:cut], case.body[cut:]])
        assert got == case.expected, f"split at byte {cut}"


@pytest.mark.parametrize("name", NAMES)
def test_one_byte_at_a_time(name: str) -> None:
    case = CASES[name]
    body = case.body
    assert decode_all([body[i : i + 1] for i in range(len(body))]) == case.expected


def test_a_bom_arriving_in_three_pieces_is_skipped_and_later_chunks_are_untouched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(BOM[:1]) == []
    assert decoder.feed(BOM[1:2]) == []
    assert decoder.feed(BOM[2:] + b"data: 1\n\n") == [e("1")]
    # A BOM at the start of a later chunk is not at the start of the stream.
    assert decoder.feed(BOM + b"data: 2\n\ndata: 3\n\n") == [e("3")]
    assert decoder.close() == []
