"""The OpenAPI document describes the whole API: every JSON answer has a declared schema.

Each route renders its own bytes; its ``response_model`` only says what they are (the fuzz,
``test_api_fuzz.py``, checks the answers against it). Here the document itself is read:
no JSON answer, success or error, may be left without a schema, and the routes that do not
answer JSON (server-sent events, the metrics text, downloads) say what they answer instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_compat.app import AppSettings, create_app

JSON = "application/json"
# The answers that are not JSON objects, by operation: the media types of their success.
NOT_JSON = {
    ("GET", "/api/v1/runs/{run_id}/events"): {"text/event-stream"},
    ("GET", "/metrics"): {"text/plain"},
    ("GET", "/v1/files/{file_id}/content"): {"application/octet-stream"},
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(AppSettings(data_dir=data_dir, token="t" * 16))
    try:
        yield app.openapi()
    finally:
        app.state.container.services.store.engine.dispose()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def test_every_json_answer_of_every_route_declares_a_schema(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    missing: list[str] = []
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                if media_type != JSON:
                    continue
                schema = content.get("schema") or {}
                ref = schema.get("$ref", "")
                if not ref.startswith("#/components/schemas/"):
                    missing.append(f"{method} {path} {status}: {schema or 'no schema'}")
                elif ref.rsplit("/", 1)[-1] not in components:
                    missing.append(f"{method} {path} {status}: {ref} is not in the document")
    assert missing == []


def test_every_route_documents_its_success(document: dict[str, Any]) -> None:
    seen_not_json = set()
    json_routes = 0
    for method, path, operation in _operations(document):
        success = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert len(success) == 1, (method, path, sorted(success))
        [(status, response)] = success.items()
        if status == "204":
            assert method == "DELETE" and "content" not in response, (method, path)
            continue
        media_types = set(response["content"])
        if (method, path) in NOT_JSON:
            seen_not_json.add((method, path))
            assert media_types == NOT_JSON[method, path], (method, path, media_types)
            for media_type, content in response["content"].items():
                if media_type == "text/event-stream":
                    # Each event as a reader parses it: a name, and JSON text as its data.
                    schema = content["schema"]
                    assert schema["required"] == ["event", "data"], (method, path)
                    assert schema["properties"]["data"]["contentMediaType"] == JSON
                else:
                    assert content["schema"] == {"type": "string"}, (method, path)
        else:
            # A JSON answer, and maybe other forms of the same (a stream, a download).
            assert JSON in media_types, (method, path, media_types)
            json_routes += 1
    assert seen_not_json == set(NOT_JSON)
    assert json_routes >= 18, json_routes


def test_the_error_answers_are_documented_as_json(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                continue
            assert set(response["content"]) == {JSON}, (method, path, status)
            # OpenAI's API under /v1 answers OpenAI's error object.
            shape = "OpenAIErrorOut" if path.startswith("/v1/") else "ErrorOut"
            assert response["content"][JSON]["schema"] == {
                "$ref": f"#/components/schemas/{shape}"
            }, (method, path, status)


def test_path_ids_are_declared_as_the_api_takes_them(document: dict[str, Any]) -> None:
    # The API refuses 0, negatives and ids past 2**63-1: the document says so, so that a
    # client (or a fuzzer) reading it never sends an id it will refuse.
    declared = 0
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path" or parameter["name"] not in ("connector_id", "run_id"):
                continue
            declared += 1
            schema = parameter["schema"]
            assert schema["type"] == "integer", (method, path, schema)
            assert schema["minimum"] == 1, (method, path, schema)
            assert schema["maximum"] == 2**63 - 1, (method, path, schema)
    assert declared >= 15


def test_a_method_a_path_does_not_take_is_answered_with_every_method_it_does(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any]
) -> None:
    from starlette.testclient import TestClient

    app = create_app(AppSettings(data_dir=tmp_path_factory.mktemp("allow"), token="t" * 16))
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            for path, operations in document["paths"].items():
                url = path.replace("{connector_id}", "1").replace("{run_id}", "1")
                url = url.replace("{upload_id}", "u1")
                declared = {method.upper() for method in operations}
                for method in ("OPTIONS", "PATCH"):
                    answer = client.request(
                        method, url, headers={"Authorization": "Bearer " + "t" * 16}
                    )
                    assert answer.status_code == 405, (method, path, answer.status_code)
                    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
                    assert allowed - {"HEAD"} == declared, (method, path, allowed)
                    assert answer.json()["error"]["message"]
    finally:
        app.state.container.services.store.engine.dispose()


def test_the_cursor_pattern_is_exactly_the_cursors_the_api_takes(document: dict[str, Any]) -> None:
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from openai_compat.app.http import decode_cursor, encode_cursor

    patterns = set()
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "cursor":
                schema = parameter["schema"]
                schema = next((s for s in schema.get("anyOf", [schema]) if "pattern" in s), {})
                assert "pattern" in schema, (method, path, parameter)
                patterns.add(schema["pattern"])
    assert len(patterns) == 1
    pattern = re.compile(patterns.pop())
    # Every cursor the API writes matches, the largest id's too.
    for last_id in (1, 9, 10, 41, 99, 100, 123456, 10**17, 2**63 - 1):
        assert pattern.fullmatch(encode_cursor(last_id)), last_id
    for text in ("", "x", "YWZ0ZXI6MA", "YWZ0ZXI6NDE!", "YWZ0ZXI6MDE", "YWZ0ZXI6"):
        assert not pattern.fullmatch(text), text
        assert decode_cursor(text) is None, text

    # And every text the pattern takes is a cursor the API takes (the fuzz sends them).
    @given(st.from_regex(pattern, fullmatch=True))
    @settings(max_examples=300, deadline=None, database=None)
    def taken(text: str) -> None:
        assert decode_cursor(text) is not None, text

    taken()

    @given(st.integers(min_value=1, max_value=10**19 - 1))
    @settings(max_examples=300, deadline=None, database=None)
    def written(value: int) -> None:
        text = encode_cursor(value)
        assert pattern.fullmatch(text), (value, text)
        assert decode_cursor(text) == min(value, 2**63 - 1)

    written()


def test_the_required_body_fields_are_declared(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    def body(method: str, path: str) -> dict[str, Any]:
        content = document["paths"][path][method]["requestBody"]["content"]
        ref = content["application/json"]["schema"]["$ref"]
        found: dict[str, Any] = schemas[ref.rsplit("/", 1)[-1]]
        return found

    new = body("post", "/api/v1/connectors")
    assert new["required"] == ["name", "configuration"]
    assert new["properties"]["name"]["type"] == "string"
    assert sorted(new["properties"]["configuration"]["required"]) == [
        "api_key",
        "request_format",
        "response_format",
        "url",
    ]
    # An update keeps what it leaves out: nothing is required there.
    assert "required" not in body("put", "/api/v1/connectors/{connector_id}")
    check = body("post", "/api/v1/connector_definitions/check_connection")
    assert check["required"] == ["configuration"]
    assert sorted(check["properties"]["configuration"]["required"]) == [
        "request_format",
        "response_format",
        "url",
    ]


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_every_pattern_is_an_ecma_regex_a_validator_compiles(document: dict[str, Any]) -> None:
    # A pattern the validators of other languages cannot compile (a Python-only construct,
    # a class of lone surrogates) makes them reject the whole document, or skip the rule.
    import jsonschema_rs

    patterns = sorted(set(_patterns(document)))
    assert len(patterns) >= 8
    for pattern in patterns:
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


def test_the_declared_rules_accept_and_refuse_what_the_routes_do(document: dict[str, Any]) -> None:
    import jsonschema_rs

    schemas = document["components"]["schemas"]
    # The document is OpenAPI 3.0 (its schemas are draft 4's dialect: a boolean
    # exclusiveMinimum), with FastAPI's type null.
    run = jsonschema_rs.Draft4Validator({**schemas["RunIn"], "components": document["components"]})
    good = {"input": {"upload_id": "u1"}, "rate": "10/S", "max_tokens": 5, "mapping": []}
    assert run.is_valid(good)
    for bad in (
        {"input": {}},
        {"input": {"upload_id": ""}},
        {"input": {"database": "sqlite:///x.db"}},  # no query
        {"input": {"upload_id": "u1"}, "rate": "fast"},
        {"input": {"upload_id": "u1"}, "max_tokens": 0},
        {"input": {"upload_id": "u1"}, "mapping": [{"name": "a..b", "value": "c"}]},
        {"input": {"upload_id": "u1"}, "placeholders": {"p": ""}},
    ):
        assert not run.is_valid(bad), bad
