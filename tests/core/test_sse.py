"""The SSE decoder: spec framing, leniencies, and any split point (property test)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from openai_compat.sse import Event, SSEDecoder, decode_all


def datas(events: list[Event]) -> list[str]:
    return [e.data for e in events]


def test_basic_events_and_done() -> None:
    body = b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'
    assert datas(decode_all([body])) == ['{"a":1}', '{"a":2}', "[DONE]"]


def test_line_endings_lf_crlf_cr_are_equivalent() -> None:
    lf = b'data: {"a":1}\n\ndata: {"b":2}\n\n'
    assert decode_all([lf.replace(b"\n", b"\r\n")]) == decode_all([lf])
    assert decode_all([lf.replace(b"\n", b"\r")]) == decode_all([lf])


def test_crlf_split_between_cr_and_lf() -> None:
    body = b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n'
    cut = body.index(b"\r\n") + 1
    assert datas(decode_all([body[:cut], body[cut:]])) == ['{"a":1}', '{"b":2}']


def test_comments_event_id_retry_lines_and_no_space_after_colon() -> None:
    body = (
        b": OPENROUTER PROCESSING\n\n"
        b'event: message\nid: 7\nretry: 1000\ndata:{"x":1}\n\n'
        b": keep-alive\n"
        b'event: ping\ndata: {"y":2}\n\n'
    )
    events = decode_all([body])
    assert datas(events) == ['{"x":1}', '{"y":2}']
    assert events[0].id == "7"
    assert events[1].event == "ping"


def test_multi_line_data_is_joined_with_newline() -> None:
    events = decode_all([b"data: line one\ndata: line two\n\n"])
    assert datas(events) == ["line one\nline two"]


def test_empty_data_events_are_skipped() -> None:
    assert datas(decode_all([b"data:\n\ndata: \n\nevent: x\n\ndata: {}\n\n"])) == ["{}"]


def test_final_event_without_blank_line_is_dispatched_on_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"last":true}') == []
    assert datas(decoder.close()) == ['{"last":true}']


def test_bare_json_line_is_an_event_of_its_own() -> None:
    body = b'{"error":{"message":"Incorrect API key provided: sk-proj"}}\n\n'
    assert datas(decode_all([body])) == [
        '{"error":{"message":"Incorrect API key provided: sk-proj"}}'
    ]
    decoder = SSEDecoder()
    # Emitted as soon as its line ends, before any blank line (the connection may fail next).
    assert datas(decoder.feed(b'{"message":"streaming data chunk 1"}\n')) == [
        '{"message":"streaming data chunk 1"}'
    ]


def test_multibyte_utf8_split_inside_a_character() -> None:
    body = 'data: {"c":"héllo 世界 🎉"}\n\n'.encode()
    cut = body.index("界".encode()) + 1
    assert datas(decode_all([body[:cut], body[cut:]])) == ['{"c":"héllo 世界 🎉"}']


def test_unicode_line_separators_inside_json_do_not_split_lines() -> None:
    body = 'data: {"c":"a\u2028b\x85c"}\n\n'.encode()
    assert datas(decode_all([body])) == ['{"c":"a\u2028b\x85c"}']


_texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=30,
)
_lines = st.one_of(
    _texts.map(lambda t: "data: " + t),
    _texts.map(lambda t: "data:" + t),
    _texts.map(lambda t: ": " + t),
    st.sampled_from(["event: delta", "id: 42", "retry: 10", "", "data: [DONE]"]),
    _texts.map(lambda t: '{"k": ' + repr(t).replace("'", '"') + "}"),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_lines, max_size=25),
    ending=st.sampled_from(["\n", "\r\n", "\r"]),
    data=st.data(),
)
def test_any_split_decodes_like_unsplit(lines: list[str], ending: str, data: st.DataObject) -> None:
    body = ending.join(lines).encode("utf-8") + ending.encode()
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=12)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    assert decode_all(pieces) == decode_all([body])
    # And byte by byte, the most hostile split of all.
    assert decode_all([body[i : i + 1] for i in range(len(body))]) == decode_all([body])


def test_cr_then_an_empty_piece_then_lf_is_one_line_end() -> None:
    # The LF pairs with the CR even when an empty read comes in between.
    body = [b"data: a\r", b"", b"\ndata: b\r\n\r\n"]
    assert datas(decode_all(body)) == ["a\nb"]


def test_raw_events_hold_the_data_as_utf8_bytes() -> None:
    decoder = SSEDecoder()
    raw = decoder.feed_raw('id: 7\nevent: e\ndata: é\n\n{"j": 1}\n'.encode())
    assert raw == [("é".encode(), "e", "7"), (b'{"j": 1}', "message", "")]
    assert decoder.close_raw() == []
