"""Security of the application: tokens, keys at rest, endpoint addresses, bad bodies."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_compat.app import AddressPolicy, EgressRefused
from openai_compat.testing import MockServer, error_reply, raw_reply, sse_reply
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

PUBLIC = {("GET", "/health"), ("GET", "/"), ("GET", "/docs")}


def _routes(client: httpx.Client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    routes = []
    for path, methods in spec["paths"].items():
        for method in methods:
            routes.append((method.upper(), path.replace("{connector_id}", "1")))
    return routes


def test_every_route_but_health_and_page_needs_the_token(
    app: AppProcess, client: httpx.Client
) -> None:
    routes = [route for route in _routes(client) if route not in PUBLIC]
    assert len(routes) >= 10
    with app.client(token=None) as anonymous, app.client(token="wrong-token") as wrong:
        for method, path in [*routes, ("GET", "/openapi.json")]:
            for c in (anonymous, wrong):
                response = c.request(method, path, json={})
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert "sign in" in response.json()["error"]["message"]
        # Only the health check and the page's files answer without a token.
        for method, path in PUBLIC:
            assert anonymous.request(method, path).status_code == 200
        assert anonymous.get("/static/app.js").status_code == 200
        assert anonymous.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
        # A token with a different scheme is not accepted either.
        basic = anonymous.get("/api/v1/connectors", headers={"Authorization": f"Basic {app.token}"})
        assert basic.status_code == 401


def test_the_canary_is_never_returned_nor_stored_in_clear(
    app: AppProcess, client: httpx.Client, server: MockServer
) -> None:
    seen: list[str] = []

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = client.request(method, path, **kwargs)
        seen.append(response.text)
        return response

    created = call(
        "POST", "/api/v1/connectors", json={"name": "c", "configuration": make_config(server.url)}
    ).json()
    cid = created["id"]
    call(
        "POST",
        "/api/v1/connectors",
        json={"name": "bad", "configuration": make_config("nope", is_stream="x")},
    )
    call("GET", "/api/v1/connectors")
    call("GET", f"/api/v1/connectors/{cid}")
    call(
        "PUT",
        f"/api/v1/connectors/{cid}",
        json={"name": "d", "configuration": make_config(server.url)},
    )
    call("POST", f"/api/v1/connectors/{cid}/check")
    call("GET", f"/api/v1/connectors/{cid}/discover")
    call(
        "POST",
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": {"model": "m", "messages": []}},
    )
    call(
        "POST",
        "/api/v1/connector_definitions/check_connection",
        json={"configuration": make_config(server.url + "?scenario=401")},
    )
    for scenario in ("401", "500", "html-200", "error-in-stream"):
        call(
            "PUT",
            f"/api/v1/connectors/{cid}",
            json={
                "configuration": make_config(f"{server.url}?scenario={scenario}", is_stream=True)
            },
        )
        call(
            "POST",
            f"/api/v1/connectors/{cid}/execute_model",
            json={"payload": {"model": "m", "messages": []}},
            headers={"Accept": "text/event-stream"},
        )
    # Secrets beyond the API key: a secret header value and a proxy password.
    advanced = {
        "headers": {"X-Team": "data"},
        "secret_headers": {"X-Gateway-Key": CANARY},
        "proxy": f"http://user:{CANARY}@proxy.invalid:3128",
    }
    response = call(
        "POST",
        "/api/v1/connectors",
        json={"name": "gw", "configuration": make_config(server.url, advanced=advanced)},
    )
    assert response.status_code == 201, response.text
    gid = response.json()["id"]
    assert response.json()["secrets_set"] == [
        "advanced.proxy",
        "advanced.secret_headers",
        "api_key",
    ]
    assert response.json()["configuration"]["advanced"]["secret_headers"] == "********"
    call("GET", f"/api/v1/connectors/{gid}")
    call("GET", "/api/v1/connectors")
    kept = call(
        "PUT",
        f"/api/v1/connectors/{gid}",
        json={"configuration": make_config(server.url, advanced={"headers": {"X-Team": "ml"}})},
    )
    assert kept.json()["secrets_set"] == ["advanced.proxy", "advanced.secret_headers", "api_key"]
    # The proxy (an unresolvable host) is used, through the address guard, and the failure
    # names it without showing its password.
    through_proxy = call("POST", f"/api/v1/connectors/{gid}/check")
    assert through_proxy.status_code == 200, through_proxy.text
    status = through_proxy.json()["connection_status"]
    assert status["status"] == "failed" and "proxy" in status["message"]
    call(
        "POST",
        "/api/v1/connector_definitions/check_connection",
        json={"configuration": make_config(server.url, advanced=advanced)},
    )
    call(
        "POST",
        "/api/v1/connector_definitions/check_connection",
        json={
            "configuration": make_config(server.url, advanced={**advanced, "proxy": "ftp://x"}),
        },
    )
    server.clear()
    call(
        "PUT",
        f"/api/v1/connectors/{gid}",
        json={"configuration": make_config(server.url, advanced={"proxy": ""})},
    )
    ran = call(
        "POST",
        f"/api/v1/connectors/{gid}/execute_model",
        json={"payload": {"model": "m", "messages": []}},
    )
    assert ran.status_code == 200, ran.text
    # The kept secret header really was sent.
    assert server.requests[-1].headers.get("x-gateway-key") == CANARY
    assert all(CANARY not in text for text in seen)
    assert any("********" in text for text in seen)
    # The key really was sent to the endpoint...
    assert any(r.headers.get("authorization") == f"Bearer {CANARY}" for r in server.requests)
    # ... and is stored encrypted: not in any row, nor in the database files.
    rows = app.rows()
    assert rows and all(CANARY not in repr(row) for row in rows)
    if app.database is None:
        for path in app.data_dir.glob("openai-compat.db*"):
            assert CANARY.encode() not in path.read_bytes(), path
    for name in ("token", "secret.key"):
        assert (
            CANARY not in (app.data_dir / name).read_text()
            if (app.data_dir / name).exists()
            else True
        )


_METADATA_URLS = [
    "http://169.254.169.254/v1/chat/completions",
    "http://[fd00:ec2::254]/v1/chat/completions",
    "http://[::ffff:169.254.169.254]/v1/chat/completions",
    # A host name that the resolver turns into the metadata address.
    "http://2852039166/v1/chat/completions",
    "http://169.254.1.1:8080/v1/chat/completions",
]


@pytest.mark.loopback_only
def test_link_local_and_metadata_endpoints_are_refused(tmp_path: Path) -> None:
    app = AppProcess(tmp_path / "data")
    try:
        with app.client() as client:
            for url in _METADATA_URLS:
                for path, body in [
                    ("/api/v1/connectors", {"name": "m", "configuration": make_config(url)}),
                    (
                        "/api/v1/connector_definitions/check_connection",
                        {"configuration": make_config(url)},
                    ),
                ]:
                    response = client.post(path, json=body)
                    assert response.status_code == 422, response.text
                    [error] = response.json()["error"]["errors"]
                    assert error["field"] == "configuration.url"
                    assert "link-local or cloud metadata" in error["message"]
                    assert "--allow-link-local" in error["message"]
    finally:
        app.stop()


def test_loopback_is_allowed_by_default(client: httpx.Client, server: MockServer) -> None:
    response = client.post(
        "/api/v1/connectors", json={"name": "local", "configuration": make_config(server.url)}
    )
    assert response.status_code == 201


@pytest.mark.loopback_only
def test_private_addresses_are_refused_when_the_option_is_on(
    tmp_path: Path, server: MockServer
) -> None:
    proc = AppProcess(tmp_path / "data", extra_args=("--refuse-private",))
    try:
        with proc.client() as client:
            for url in (
                server.url,
                "http://10.1.2.3/v1/chat/completions",
                "http://localhost:9/v1/chat/completions",
            ):
                response = client.post(
                    "/api/v1/connector_definitions/check_connection",
                    json={"configuration": make_config(url)},
                )
                assert response.status_code == 422, url
                assert "--refuse-private" in response.json()["error"]["errors"][0]["message"]
            assert server.requests == []
    finally:
        proc.stop()


async def test_policy_checks_every_resolved_address() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {
            "metadata.internal": ["10.0.0.5", "169.254.169.254"],
            "model.internal": ["10.0.0.7"],
        }[host]

    policy = AddressPolicy(resolver=resolver)
    with pytest.raises(EgressRefused, match=r"metadata.internal \(resolves to 169.254.169.254\)"):
        await policy.check_url("https://metadata.internal/v1/chat/completions")
    await policy.check_url("https://model.internal/v1/chat/completions")
    await AddressPolicy(resolver=resolver, allow_link_local=True).check_url(
        "http://metadata.internal/"
    )
    with pytest.raises(EgressRefused, match="private"):
        await AddressPolicy(resolver=resolver, refuse_private=True).check_url(
            "http://model.internal/"
        )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"name": "x", "configuration": {', "not valid JSON"),
        (b"", "needs a JSON body"),
        (b"[1, 2, 3]", "body"),
        (b'{"name": 5, "configuration": "text"}', "configuration"),
        (b"\xff\xfe", "not valid JSON"),
        # Deeper than Python's JSON parser goes: a clear 400, not "error parsing the body".
        (
            b'{"name": "x", "configuration": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "nested too deeply",
        ),
    ],
)
def test_malformed_bodies_are_4xx_with_a_reason(
    client: httpx.Client, body: bytes, reason: str
) -> None:
    for path in ("/api/v1/connectors", "/api/v1/connector_definitions/check_connection"):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
        message = response.json()["error"]["message"]
        assert reason in message, message
        assert "Traceback" not in response.text


def test_generated_credentials_are_owner_only_printed_once_and_needed(
    tmp_path: Path, server: MockServer
) -> None:
    data = tmp_path / "data"
    first = AppProcess(data, token=None)
    try:
        token = first.token
        assert token in first.log_text()
        with first.client() as client:
            config = make_config(server.url)
            cid = client.post(
                "/api/v1/connectors", json={"name": "c", "configuration": config}
            ).json()["id"]
    finally:
        first.stop()
    for name in ("token", "secret.key"):
        assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600
    # Stored keys cannot be read with another secret key: a clear error, not a crash.
    (data / "secret.key").unlink()
    second = AppProcess(data, token=None)
    try:
        assert second.token == token
        assert token not in second.log_text() and str(data / "token") in second.log_text()
        with second.client() as client:
            response = client.post(f"/api/v1/connectors/{cid}/check")
            assert response.status_code == 409
            assert "secret key changed" in response.json()["error"]["message"]
    finally:
        second.stop()


@pytest.mark.loopback_only
async def test_connections_go_only_to_checked_addresses(server: MockServer) -> None:
    """DNS rebinding: the connection itself is made to an address that passed the policy."""
    from openai_compat._transports import hooked_client_factory

    answers = {"model.test": ["127.0.0.1"], "rebind.test": ["169.254.169.254"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    policy = AddressPolicy(resolver=resolver)
    guarded = hooked_client_factory(policy.allowed_addresses)
    async with guarded(verify=True, proxy=None, limits=httpx.Limits()) as client:
        # Pinned: the name resolves through the policy's resolver to the mock's address.
        response = await client.get(f"http://model.test:{server.port}/v1/models")
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError, match=r"169\.254\.169\.254 is a link-local"):
            await client.get(f"http://rebind.test:{server.port}/v1/models")
        with pytest.raises(httpx.ConnectError, match="link-local"):
            await client.get("http://169.254.169.254/latest/meta-data/")


@pytest.mark.loopback_only
async def test_tls_and_proxy_configurations_are_guarded_too(server: MockServer) -> None:
    """A configuration with its own client (proxy, TLS options) still goes through the guard."""
    from openai_compat import Endpoint, OpenAICompatError
    from openai_compat._transports import hooked_client_factory

    factory = hooked_client_factory(AddressPolicy().allowed_addresses)
    metadata_proxy = make_config(
        server.url, advanced={"proxy": "http://169.254.169.254:3128", "max_retries": 0}
    )
    async with Endpoint(metadata_proxy, client_factory=factory) as endpoint:
        with pytest.raises(OpenAICompatError, match="link-local"):
            await endpoint.complete({"model": "m", "messages": []})
    assert server.requests == []
    # An allowed address with TLS options (verify off, plain http here) is reached.
    allowed = make_config(server.url, advanced={"verify_tls": False, "max_retries": 0})
    async with Endpoint(allowed, client_factory=factory) as endpoint:
        done = await endpoint.complete({"model": "m", "messages": []})
    assert done.response["choices"][0]["message"]["content"].startswith("You said")


def test_no_field_of_an_endpoint_error_shows_the_key_in_any_door(
    client: httpx.Client, server: MockServer
) -> None:
    """A server echoing the Authorization header into type, code, param and x-request-id."""
    echo = f"Bearer {CANARY}"
    created = client.post(
        "/api/v1/connectors",
        json={"name": "echo", "configuration": make_config(server.url, is_stream=True)},
    ).json()
    cid = created["id"]
    failing = error_reply(
        400, "rejected", type=echo, code=echo, param=echo, headers={"x-request-id": echo}
    )
    server.enqueue(failing)
    answer = client.post(
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": {"model": "m", "messages": []}},
    )
    assert answer.status_code == 502
    error = answer.json()["error"]
    fields = ("message", "provider_message", "provider_type", "provider_code", "request_id")
    assert all(CANARY not in str(error[name]) for name in fields)
    assert error["provider_type"] == "Bearer ***" and error["provider_code"] == "Bearer ***"
    # The SSE door: an error event after the first record.
    server.enqueue(
        sse_reply(
            [{"choices": [{"delta": {"content": "x"}}]}, {"error": {"message": "m", "code": echo}}],
            headers={"x-request-id": echo},
        )
    )
    streamed = client.post(
        f"/api/v1/connectors/{cid}/execute_model",
        json={"payload": {"model": "m", "messages": []}},
        headers={"Accept": "text/event-stream"},
    )
    assert streamed.status_code == 200
    assert "event: error" in streamed.text and "Bearer ***" in streamed.text
    assert CANARY not in streamed.text
    assert CANARY not in answer.text


def test_an_empty_stream_is_a_failure_in_both_app_answers(
    client: httpx.Client, server: MockServer
) -> None:
    created = client.post(
        "/api/v1/connectors",
        json={"name": "empty", "configuration": make_config(server.url, is_stream=True)},
    ).json()
    empty = raw_reply(b"", content_type="text/event-stream")
    server.enqueue(empty, empty)
    path = f"/api/v1/connectors/{created['id']}/execute_model"
    body = {"payload": {"model": "m", "messages": []}}
    answer = client.post(path, json=body)
    assert answer.status_code == 502
    assert answer.json()["error"]["message"] == (
        "the endpoint answered, but with an empty stream (no chunk)"
    )
    streamed = client.post(path, json=body, headers={"Accept": "text/event-stream"})
    assert streamed.status_code == 502 and "empty stream" in streamed.json()["error"]["message"]


@pytest.mark.loopback_only
def test_a_runs_proxy_is_judged_by_the_address_policy_too(
    tmp_path: Path, server: MockServer
) -> None:
    """A run of a connector with a proxy sends through a client of its own: the guard makes
    it, so a link-local proxy is never connected to and each row fails saying why."""
    import json
    import time

    config = make_config(
        server.url,
        request_format='{"model": "m", "messages": [{"role": "user", "content": "{{t}}"}]}',
        advanced={"proxy": "http://169.254.169.254:3128", "max_retries": 0},
    )
    rows = "".join(json.dumps({"id": i, "t": f"row {i}"}) + "\n" for i in range(3))
    app = AppProcess(tmp_path / "data")
    try:
        with app.client() as client:
            made = client.post("/api/v1/connectors", json={"name": "p", "configuration": config})
            assert made.status_code == 201, made.text
            upload = client.post("/api/v1/uploads", files={"file": ("r.jsonl", rows)})
            body = {"input": {"upload_id": upload.json()["id"]}, "key": "id", "rate": None}
            run = client.post(f"/api/v1/connectors/{made.json()['id']}/runs", json=body)
            assert run.status_code == 201, run.text
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                view = client.get(f"/api/v1/runs/{run.json()['id']}").json()
                if view["status"] not in ("queued", "running"):
                    break
                time.sleep(0.1)
            failed = client.get(
                f"/api/v1/runs/{run.json()['id']}/results", params={"failed": "true"}
            ).json()["data"]
    finally:
        app.stop()
    assert sorted(r["key"] for r in failed) == [0, 1, 2]  # failed, none dropped
    for row in failed:
        assert "169.254.169.254" in row["error"]["message"], row["error"]
        assert "link-local" in row["error"]["message"], row["error"]
    assert server.requests == []
