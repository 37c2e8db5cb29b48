"""What the application writes it can show, and stored secrets stay with their host.

A request with text that cannot be encoded (a lone surrogate) is refused before anything
is written; a failed write commits nothing; a row that cannot be shown (put into the
database by something else) never breaks the list. Stored secrets are never sent to an
endpoint origin they were not saved for. Against ``openai-compat serve``, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openai_compat.app.connectors.store import Unstorable
from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

_JSON = {"content-type": "application/json"}


@pytest.fixture
def other_server() -> Iterator[MockServer]:
    """A second model endpoint: another port on 127.0.0.1 is another origin."""
    with MockServer() as srv:
        yield srv


def _send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    # httpx refuses to encode a lone surrogate; json.dumps writes it as the escape a
    # client may well send.
    return client.request(method, path, content=json.dumps(body), headers=_JSON)


def _count(app: AppProcess) -> int:
    return int(app.query("select count(*) from connectors")[0][0])


def _bad_configurations(url: str) -> dict[str, dict[str, Any]]:
    return {
        "header value": make_config(url, advanced={"headers": {"X-A": "a\ud800"}}),
        "header name": make_config(url, advanced={"headers": {"X-\udfff": "a"}}),
        "secret header": make_config(url, advanced={"secret_headers": {"X-S": "\ud800"}}),
        "url": make_config(url + "/\ud800"),
        "api key": make_config(url, api_key="sk-\ud800"),
        "request_format text": make_config(url, request_format='{"model": "\ud800"}'),
        "request_format escapes": make_config(
            url, request_format='{"model": "\\ud800", "messages": []}'
        ),
        "config": make_config(url, config={"timeout": 5, "x": ["\udc80"]}),
    }


def _assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert any(e["field"].startswith(field) for e in error["errors"]), error
    assert "lone surrogate" in error["message"]


_FIELDS = {
    "header value": "configuration.advanced.headers",
    "header name": "configuration.advanced.headers",
    "secret header": "configuration.advanced.secret_headers",
    "url": "configuration.url",
    "api key": "configuration.api_key",
    "request_format text": "configuration.request_format",
    "request_format escapes": "configuration.request_format",
    "config": "configuration.config",
}


def test_text_that_cannot_be_encoded_is_refused_before_any_write(
    app: AppProcess, client: httpx.Client, server: MockServer
) -> None:
    before = _count(app)
    for label, configuration in _bad_configurations(server.url).items():
        created = _send(
            client, "POST", "/api/v1/connectors", {"name": label, "configuration": configuration}
        )
        _assert_refused(created, _FIELDS[label])
        assert _count(app) == before, f"{label}: a refused create wrote a row"
        listed = client.get("/api/v1/connectors", params={"limit": 500})
        assert listed.status_code == 200
    named = _send(
        client,
        "POST",
        "/api/v1/connectors",
        {"name": "n\ud800", "configuration": make_config(server.url)},
    )
    assert named.status_code == 422 and named.json()["error"]["errors"][0]["field"] == "name"
    assert _count(app) == before

    good = client.post(
        "/api/v1/connectors", json={"name": "good", "configuration": make_config(server.url)}
    )
    cid = good.json()["id"]
    try:
        row = app.query(f"select * from connectors where id = {cid}")
        for label, configuration in _bad_configurations(server.url).items():
            updated = _send(
                client, "PUT", f"/api/v1/connectors/{cid}", {"configuration": configuration}
            )
            _assert_refused(updated, _FIELDS[label])
            assert app.query(f"select * from connectors where id = {cid}") == row, label
        renamed = _send(client, "PUT", f"/api/v1/connectors/{cid}", {"name": "\udbff"})
        assert renamed.status_code == 422
        assert app.query(f"select * from connectors where id = {cid}") == row
        # A payload is checked the same way, before anything is sent.
        server.clear()
        sent = _send(
            client,
            "POST",
            f"/api/v1/connectors/{cid}/execute_model",
            {"payload": {"model": "\ud800"}},
        )
        assert (
            sent.status_code == 422
            and sent.json()["error"]["errors"][0]["field"] == "payload.model"
        )
        assert server.requests == []
    finally:
        client.delete(f"/api/v1/connectors/{cid}")


def _insert_row(app: AppProcess, name_sql: str, configuration: str, secrets: str) -> int:
    app.query(
        "insert into connectors (name, connector_name, configuration, secrets_encrypted, "
        f"created_at, updated_at) values ({name_sql}, 'openai_compatible', '{configuration}', "
        f"'{secrets}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    return int(app.query("select max(id) from connectors")[0][0])


def test_a_row_that_cannot_be_shown_never_breaks_the_list(
    app: AppProcess, client: httpx.Client, server: MockServer
) -> None:
    good = client.post(
        "/api/v1/connectors", json={"name": "good", "configuration": make_config(server.url)}
    )
    assert good.status_code == 201
    good_id = good.json()["id"]
    # What each database accepts from another tool: a JSON escape of a lone surrogate in
    # the configuration (both), a secret no key decrypts (both), a name that is not UTF-8
    # (SQLite only: PostgreSQL checks its text).
    url = server.url
    bad = [
        _insert_row(
            app, "'surrogate'", json.dumps({"url": url, "x": "@"}).replace("@", "\\ud800"), "{}"
        ),
        _insert_row(app, "'undecryptable'", json.dumps({"url": url}), '{"api_key": "not-a-token"}'),
    ]
    if not app.database:
        bad.append(_insert_row(app, "CAST(X'6EEDA080' AS TEXT)", json.dumps({"url": url}), "{}"))
    try:
        listed = client.get("/api/v1/connectors", params={"limit": 500})
        assert listed.status_code == 200, listed.text
        items = {item["id"]: item for item in listed.json()["data"]}
        assert items[good_id]["name"] == "good"
        for cid in bad:
            assert set(items[cid]) == {"id", "error"}, items[cid]
            one = client.get(f"/api/v1/connectors/{cid}")
            assert one.status_code == 409, one.text
            assert one.json()["error"]["message"] == items[cid]["error"]
        assert "cannot be shown" in items[bad[0]]["error"]
        assert "delete it or save it again" in items[bad[0]]["error"]
        assert "cannot be decrypted" in items[bad[1]]["error"]
        # Paging over them one by one works too.
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/connectors", params=params)
            assert page.status_code == 200, page.text
            seen += [item["id"] for item in page.json()["data"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(items)
        # Saved again, a row is whole again.
        fixed = client.put(
            f"/api/v1/connectors/{bad[1]}",
            json={"name": "fixed", "configuration": make_config(server.url)},
        )
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["api_key_set"] is True
        bad.pop(1)
    finally:
        for cid in bad:
            assert client.delete(f"/api/v1/connectors/{cid}").status_code == 204
            assert client.get(f"/api/v1/connectors/{cid}").status_code == 404
        client.delete(f"/api/v1/connectors/{good_id}")


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The application's ``Services`` without a server, to write past the validation."""
    from openai_compat.app.application import create_app
    from openai_compat.app.settings import AppSettings

    database = ""
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres").create_database(
            f"store_{tmp_path.name.replace('-', '_')[:40]}"
        )
    settings = AppSettings(data_dir=tmp_path, token="t" * 16, database_url=database)
    found = create_app(settings).state.container.services
    yield found
    found.store.engine.dispose()


class _Unrendered(Exception):
    pass


def _refuse(stored: Any) -> None:
    raise _Unrendered


def test_a_value_that_slips_past_validation_is_never_committed(services: Any) -> None:
    store = services.store
    for configuration in ({"url": "u", "x": "\ud800"}, {"url": "u", "x": {"\udfff": 1}}):
        with pytest.raises(Unstorable):
            store.create("c", configuration, {}, services.shown)
    with pytest.raises(Unstorable):
        store.create("c\ud800", {"url": "u"}, {}, services.shown)
    # An answer that cannot be rendered rolls the write back too.
    with pytest.raises(_Unrendered):
        store.create("c", {"url": "u"}, {}, _refuse)
    assert store.list() == []
    cid = store.create("c", {"url": "u"}, {}, lambda stored: stored.id)
    with pytest.raises(Unstorable):
        store.update(cid, "c", {"url": "\ud800"}, {}, services.shown)
    with pytest.raises(_Unrendered):
        store.update(cid, "c", {"url": "u2"}, {}, _refuse)
    [kept] = store.list()
    assert kept.configuration == {"url": "u"} and kept.updated_at == kept.created_at


# -- stored secrets and another host ------------------------------------------------------


def _secret_config(url: str, key: str = CANARY) -> dict[str, Any]:
    return make_config(url, api_key=key, advanced={"secret_headers": {"X-Gateway-Key": key}})


def test_stored_secrets_are_not_sent_to_another_host(
    client: httpx.Client, server: MockServer, other_server: MockServer
) -> None:
    created = client.post(
        "/api/v1/connectors", json={"name": "s", "configuration": _secret_config(server.url)}
    )
    cid = created.json()["id"]
    moved = make_config(other_server.url)
    del moved["api_key"]
    try:
        checked = client.post(
            "/api/v1/connector_definitions/check_connection",
            json={"configuration": moved, "connector_id": cid},
        )
        assert checked.status_code == 422, checked.text
        fields = [e["field"] for e in checked.json()["error"]["errors"]]
        assert fields == ["configuration.advanced.secret_headers", "configuration.api_key"]
        message = checked.json()["error"]["message"]
        assert (
            f"changed from http://127.0.0.1:{server.port} to http://127.0.0.1:{other_server.port}"
            in message
        )
        assert "give the API key again" in message

        updated = client.put(f"/api/v1/connectors/{cid}", json={"configuration": moved})
        assert updated.status_code == 422 and "give the secret headers again" in updated.text
        assert client.get(f"/api/v1/connectors/{cid}").json()["configuration"]["url"] == server.url
        assert (
            client.post(f"/api/v1/connectors/{cid}/check").json()["connection_status"]["status"]
            == "succeeded"
        )
        assert other_server.requests == [], "a stored secret reached the other host"

        # The same origin, another path: the stored secrets are used.
        same = {**moved, "url": server.url.replace("/chat/completions", "/other")}
        assert (
            client.post(
                "/api/v1/connector_definitions/check_connection",
                json={"configuration": same, "connector_id": cid},
            ).status_code
            == 200
        )
        assert server.requests[-1].headers["authorization"] == f"Bearer {CANARY}"

        # Given again, they go to the new host.
        again = _secret_config(other_server.url, key="sk-for-the-other-host")
        checked = client.post(
            "/api/v1/connector_definitions/check_connection",
            json={"configuration": again, "connector_id": cid},
        )
        assert checked.json()["connection_status"]["status"] == "succeeded", checked.text
        updated = client.put(f"/api/v1/connectors/{cid}", json={"configuration": again})
        assert updated.status_code == 200, updated.text
        assert (
            client.post(f"/api/v1/connectors/{cid}/check").json()["connection_status"]["status"]
            == "succeeded"
        )
        assert other_server.requests, "the other host was never asked"
        for seen in other_server.requests:
            assert CANARY not in json.dumps(seen.headers) and CANARY.encode() not in seen.body
            assert seen.headers["authorization"] == "Bearer sk-for-the-other-host"
            assert seen.headers["x-gateway-key"] == "sk-for-the-other-host"
    finally:
        client.delete(f"/api/v1/connectors/{cid}")


def test_a_secret_left_empty_is_not_a_secret_to_give_again(
    client: httpx.Client, server: MockServer, other_server: MockServer
) -> None:
    created = client.post(
        "/api/v1/connectors",
        json={"name": "open", "configuration": make_config(server.url, api_key="")},
    )
    cid = created.json()["id"]
    try:
        moved = make_config(other_server.url)
        del moved["api_key"]
        updated = client.put(f"/api/v1/connectors/{cid}", json={"configuration": moved})
        assert updated.status_code == 200, updated.text
        assert updated.json()["configuration"]["url"] == other_server.url
    finally:
        client.delete(f"/api/v1/connectors/{cid}")
