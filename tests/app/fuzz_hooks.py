"""Schemathesis hooks of the API fuzz (``test_api_fuzz.py``), loaded by ``st run`` from
``SCHEMATHESIS_HOOKS``: traffic kept on loopback, the canary check, and the one list of
refusals no JSON Schema could prevent.

``FUZZ_MOCK_URL`` is the MockServer's chat URL; ``FUZZ_CANARY`` the key that must never
be in an answer.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis
from schemathesis.checks import ServerError
from schemathesis.openapi.checks import RejectedPositiveData

from openai_compat.app.http import configuration_schema

_MOCK_URL = os.environ["FUZZ_MOCK_URL"]
_CANARY = os.environ["FUZZ_CANARY"]
# A database URL that can be reached only on loopback, on a port nothing listens on.
_NOWHERE_DATABASE = "postgresql://fuzz@127.0.0.1:1/fuzz"
_DECLARED_URL = re.compile(configuration_schema(api_key=True)["properties"]["url"]["pattern"])

# What the document cannot say, and so the only refusals of a schema-valid request that are
# not findings: a 422 each of whose problems is one of these. JSON Schema has no rule for
# "this text parses as JSON" (a mapping given as text), "this database answers" (a URL on
# loopback where nothing listens), "this upload exists", "this file's name says its format"
# (a multipart part's filename), or what depends on the saved connector and the input: the
# request format's placeholders, the input's columns, the row's; nor that output names
# differ from each other; nor that a schema is a JSON Schema of an object (a metaschema the
# document would have to embed), which schema_mode and reasks need beside them. Nor can a
# pattern name a lone surrogate (ECMA-262 classes hold characters), which a name or key
# must not hold, and OpenAPI 3.0 cannot constrain an object's keys (the mapping shorthand's
# are paths). Its "more than" (a boolean exclusiveMinimum) does not survive FastAPI's
# document model, which types it as 3.1's number: a budget of 0 is refused without the
# document saying so. Nor has OpenAPI 3.0 a rule for one field needing another (a cost
# budget needs prices).
UNDECLARABLE = (
    "is not valid JSON",
    "the request format has no placeholder",
    "names no column of the input",
    "the row has no column",
    "must name a column of the input",
    "is used twice",
    "needs a schema",
    "is not a valid JSON Schema",
    "is not a usable JSON Schema",
    "the top level must be an object",
    "write a dotted path such as",
    "must be a dotted path such as",
    "must be a number of USD above 0",
    "a cost budget needs prices",
    "a lone surrogate",
    "cannot connect to the database",
    "there is no upload",
    "cannot tell the format from the name",
)


def _undeclarable(response: Any) -> bool:
    """True when ``response`` refuses a request only for what the document cannot say."""
    if response.status_code != 422:
        return False
    try:
        problems = json.loads(response.content)["error"]["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(problems) and all(
        any(rule in str(p.get("message")) for rule in UNDECLARABLE) for p in problems
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
        url = configuration.get("url")
        if isinstance(url, str):
            # A URL the document allows goes to the MockServer; one it refuses stays refused
            # (as a text that is no URL at all), never reaching any address.
            configuration["url"] = _MOCK_URL if _DECLARED_URL.match(url) else "no URL"
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
    """Keep every finding but a schema-valid request refused only for what the document
    cannot say, and a relay's documented answer to the endpoint's failure."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if isinstance(failure, RejectedPositiveData) and _undeclarable(response):
        return False
    relayed = label in RELAYS and response.status_code in (502, 504)
    return not (isinstance(failure, ServerError) and relayed)
