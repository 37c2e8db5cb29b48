"""Schemathesis hooks of the API fuzz (``test_api_fuzz.py``), loaded by ``st run`` from
``SCHEMATHESIS_HOOKS``: traffic kept on loopback, the canary check, and the one list of
findings not fixed yet.

``FUZZ_MOCK_URL`` is the MockServer's chat URL; ``FUZZ_CANARY`` the key that must never
be in an answer.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from schemathesis.checks import ServerError
from schemathesis.openapi.checks import RejectedPositiveData

_MOCK_URL = os.environ["FUZZ_MOCK_URL"]
_CANARY = os.environ["FUZZ_CANARY"]
# A database URL that can be reached only on loopback, on a port nothing listens on.
_NOWHERE_DATABASE = "postgresql://fuzz@127.0.0.1:1/fuzz"

# Requests valid by the document that the API still refuses, because what it checks is
# not declared yet: the contents of a connector configuration (JSON texts, a URL, a name's
# characters; its required keys are declared), a payload or mapping given as JSON text, a
# run's input and options, a database URL and query, and an uploaded file's format. Each operation here is fuzzed with every check; only "schema-valid request
# rejected" is not counted for it.
UNDECLARED = frozenset(
    {
        "POST /api/v1/connector_definitions/check_connection",
        "POST /api/v1/connectors",
        "PUT /api/v1/connectors/{connector_id}",
        "POST /api/v1/connectors/{connector_id}/execute_model",
        "POST /api/v1/connectors/{connector_id}/mapping_preview",
        "POST /api/v1/connectors/{connector_id}/runs",
        "POST /api/v1/queries",
        "POST /api/v1/uploads",
        "POST /v1/files",
        "POST /v1/batches",
        "POST /v1/batches/{batch_id}/cancel",
    }
)


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    """Point a generated configuration at the MockServer, drop a generated proxy, and give
    a generated database URL a loopback one: the application sends nothing off loopback."""
    body = case.body
    if not isinstance(body, dict):
        return
    configuration = body.get("configuration")
    if isinstance(configuration, dict):
        if isinstance(configuration.get("url"), str):
            configuration["url"] = _MOCK_URL
        advanced = configuration.get("advanced")
        if isinstance(advanced, dict):
            advanced.pop("proxy", None)
        elif isinstance(advanced, str):
            # Options given as JSON text could name a proxy too.
            configuration.pop("advanced")
    given = body.get("input")
    for holder in (body, given if isinstance(given, dict) else {}):
        if isinstance(holder.get("database"), str):
            holder["database"] = _NOWHERE_DATABASE


@schemathesis.check
def no_canary(ctx: Any, response: Any, case: Any) -> bool | None:
    """The canary key is in no answer: not its body, not a header."""
    if _CANARY.encode() in response.content:
        raise AssertionError("the API key is in a response body")
    if _CANARY in json.dumps(dict(response.headers)):
        raise AssertionError("the API key is in a header")
    return None


# The operations that send to the model endpoint: its failure is their documented 502 (504
# on a timeout), "the model endpoint failed", not a failure of the application. (The
# MockServer refuses a payload without "model", which the fuzz sends.)
RELAYS = frozenset(
    {
        "POST /api/v1/connector_definitions/check_connection",
        "POST /api/v1/connectors/{connector_id}/check",
        "POST /api/v1/connectors/{connector_id}/execute_model",
    }
)


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every finding but the listed operations' rejected schema-valid requests, and a
    relay's documented answer to the endpoint's failure."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if isinstance(failure, RejectedPositiveData) and label in UNDECLARED:
        return False
    relayed = label in RELAYS and response.status_code in (502, 504)
    return not (isinstance(failure, ServerError) and relayed)
