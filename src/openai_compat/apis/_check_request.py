"""The request ``check`` sends: the configured request format when it is one of the URL's
API (or the URL is a chat URL), else the smallest request of that API (the connection's
default request format is a chat request, which an embeddings, completions or Responses URL
refuses or misreads).

>>> from ._embeddings import EMBEDDINGS
>>> check_request(EMBEDDINGS, {"model": "m", "messages": []})
({'model': 'm', 'input': 'Hi'}, 'input')
>>> check_request(EMBEDDINGS, {"model": "m", "input": ["a"]})
({'model': 'm', 'input': ['a']}, None)
"""

from __future__ import annotations

from typing import Any

from ._base import Dialect

__all__ = ["check_request", "request_field"]

# The field every request of an API has, and what the smallest request adds to the model.
_FIELDS: dict[str, str] = {
    "chat": "messages",
    "embeddings": "input",
    "completions": "prompt",
    "responses": "input",
}
# Answers kept short: a check needs an answer, not a text (16 is the least OpenAI's
# Responses API takes for max_output_tokens).
_MINIMAL: dict[str, dict[str, Any]] = {
    "embeddings": {"input": "Hi"},
    "completions": {"prompt": "Hi", "max_tokens": 1},
    "responses": {"input": "Hi", "max_output_tokens": 16},
}


def request_field(dialect: Dialect) -> str:
    """The field every request of ``dialect`` has (``messages``, ``input``, ``prompt``)."""
    return _FIELDS[dialect.name]


def check_request(
    dialect: Dialect, request_format: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """The body ``check`` sends, and the field the request format lacks (None: the request
    format is one of ``dialect``'s requests and is sent as it is). The smallest request
    keeps the request format's ``model``. A chat URL is always sent the request format as
    it is, as the original connector does (its check posts whatever body it is given)."""
    field = request_field(dialect)
    if field in request_format or dialect.name == "chat":
        return request_format, None
    body: dict[str, Any] = {}
    model = request_format.get("model")
    if model is not None:
        body["model"] = model
    return {**body, **_MINIMAL[dialect.name]}, field
