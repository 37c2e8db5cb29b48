"""The message envelope: the fast record builder is the same model pydantic would build."""

from __future__ import annotations

import time

from openai_compat.protocol import ProtocolMessage, RecordMessage, log_message, record_message


def _constructed(data: dict[str, object], emitted_at: int) -> ProtocolMessage:
    record = RecordMessage.model_construct(data=data, emitted_at=emitted_at)
    return ProtocolMessage.model_construct(type="record", record=record)


def test_record_message_equals_the_model_construct_one() -> None:
    data = {"id": "c1", "choices": [{"delta": {"content": "Hi"}}], "usage": None}
    fast, slow = record_message(data, 1700000000), _constructed(data, 1700000000)
    assert fast == slow
    assert fast.record == slow.record
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.record is not None and slow.record is not None
    assert fast.record.model_fields_set == slow.record.model_fields_set
    assert fast.record.model_extra == slow.record.model_extra == {}
    assert fast.record.__pydantic_private__ == slow.record.__pydantic_private__
    assert list(fast.__dict__) == list(slow.__dict__)
    assert fast.to_json() == slow.to_json()
    assert fast.to_dict() == slow.to_dict()
    assert repr(fast) == repr(slow)


def test_record_message_keeps_nulls_in_data_and_stamps_the_time() -> None:
    before = int(time.time())
    message = record_message({"a": None, "b": [None]})
    assert message.type == "record"
    assert message.payload is message.record
    assert message.to_dict()["record"]["data"] == {"a": None, "b": [None]}
    assert before <= message.to_dict()["record"]["emitted_at"] <= int(time.time())
    assert ProtocolMessage.model_validate(message.to_dict()) == message


def test_record_messages_do_not_share_state() -> None:
    first, second = record_message({"n": 1}, 1), record_message({"n": 2}, 1)
    assert first.record is not None and second.record is not None
    first.record.emitted_at = 5
    assert second.record.emitted_at == 1
    assert first.model_fields_set is not second.model_fields_set
    assert first.record.model_fields_set is not second.record.model_fields_set
    assert first.record.model_extra is not second.record.model_extra


def test_log_message_envelope() -> None:
    message = log_message("error", "boom", "x")
    assert message.to_dict() == {
        "type": "log",
        "log": {"level": "error", "message": "boom", "name": "x"},
    }
