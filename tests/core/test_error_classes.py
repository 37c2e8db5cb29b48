"""One error class per status family, as openai-python has: raised by the one builder of
errors, for answers from a real server on 127.0.0.1 (the scripted one)."""

from __future__ import annotations

import pytest

import openai_compat
from openai_compat import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    Endpoint,
    EndpointError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from openai_compat.testing import MockServer, error_reply, json_reply
from tests.conftest import NO_RETRY, make_config

PAYLOAD = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}

BY_STATUS = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, ConflictError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, InternalServerError),
    (502, InternalServerError),
    (503, InternalServerError),
]


async def _raised(server: MockServer) -> EndpointError:
    with pytest.raises(EndpointError) as caught:
        async with Endpoint(make_config(server.url), retry=NO_RETRY) as endpoint:
            await endpoint.complete(PAYLOAD)
    return caught.value


@pytest.mark.parametrize(("status", "cls"), BY_STATUS)
async def test_each_status_raises_its_class(
    server: MockServer, status: int, cls: type[EndpointError]
) -> None:
    server.enqueue(error_reply(status, "no", type="some_error"))
    err = await _raised(server)
    assert type(err) is cls
    # The data every EndpointError carries is the same on a subclass.
    assert err.status == status
    assert err.provider_message == "no"
    assert err.type == "some_error"


@pytest.mark.parametrize("status", [402, 408, 410, 418, 451])
async def test_other_statuses_raise_the_base_class(server: MockServer, status: int) -> None:
    server.enqueue(error_reply(status, "no"))
    err = await _raised(server)
    assert type(err) is EndpointError
    assert err.status == status


async def test_an_error_inside_a_200_is_the_base_class(server: MockServer) -> None:
    server.enqueue(json_reply({"error": {"message": "overloaded", "type": "server_error"}}))
    err = await _raised(server)
    assert type(err) is EndpointError
    assert err.provider_message == "overloaded"


def test_every_status_class_is_an_endpoint_error_exported_at_the_top() -> None:
    for _, cls in BY_STATUS:
        assert issubclass(cls, EndpointError)
        assert getattr(openai_compat, cls.__name__) is cls
        assert cls.__name__ in openai_compat.__all__
