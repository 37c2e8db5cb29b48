"""Small parts of the application: ``ENV[...]`` references, field validation, key cipher,
secret fields, the schema migration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import text

from openai_compat import ConfigurationError, SourceConfig, resources
from openai_compat.app import KeyCipher, resolve_env_refs
from openai_compat.app.connectors.store import ConnectorStore
from openai_compat.app.connectors.validation import validate_configuration
from openai_compat.app.db.database import database_url, migrate, open_engine
from openai_compat.app.http.problems import ApiError
from openai_compat.app.secrets.fields import SecretFields, secret_paths
from tests.conftest import CANARY, make_config


def test_env_references_are_resolved_anywhere_and_only_whole_values() -> None:
    env = {"KEY": CANARY, "TIMEOUT": "12"}
    raw = {"api_key": 'ENV["KEY"]', "config": {"timeout": "ENV['TIMEOUT']"}, "url": 'x ENV["KEY"]'}
    assert resolve_env_refs(raw, environ=env) == {
        "api_key": CANARY,
        "config": {"timeout": "12"},
        "url": 'x ENV["KEY"]',
    }
    with pytest.raises(ConfigurationError, match=r"config\.timeout") as info:
        resolve_env_refs({"config": {"timeout": 'ENV["MISSING"]'}}, environ={})
    assert "MISSING" in str(info.value) and "not set" in str(info.value)


def test_validation_reports_every_field_and_skips_env_references() -> None:
    _, errors = validate_configuration(
        {"url": 'ENV["URL"]', "is_stream": 3, "request_format": "[]", "response_format": "{}"},
        require_api_key=True,
    )
    assert {e["field"] for e in errors} == {
        "configuration.api_key",
        "configuration.is_stream",
        "configuration.request_format",
    }
    clean, errors = validate_configuration(
        make_config("http://127.0.0.1:1/v1/chat/completions"), require_api_key=True
    )
    assert errors == [] and clean["api_key"] == CANARY
    assert validate_configuration("text", require_api_key=False)[1][0]["field"] == "configuration"


def test_validation_lists_each_problem_of_the_whole_configuration_in_form_order() -> None:
    config = make_config(
        "ftp://h/v1/chat/completions",
        is_stream='ENV["STREAM"]',
        request_format="[1]",
        advanced={"deadline": 'ENV["DEADLINE"]', "proxy": CANARY, "max_retries": -1, "x": 1},
    )
    _, errors = validate_configuration(config, require_api_key=True)
    assert [e["field"] for e in errors] == [
        "configuration.url",
        "configuration.request_format",
        "configuration.advanced.proxy",
        "configuration.advanced.max_retries",
        "configuration.advanced.x",
    ]
    # The key pasted into another field is redacted there.
    assert errors[2]["message"].endswith("got '***'") and CANARY not in repr(errors)
    # Saved with a bad value elsewhere, an ``ENV[...]`` group value is still not checked.
    _, errors = validate_configuration(
        make_config("http://h/v1", advanced={"auth": "header", "auth_header": 'ENV["H"]'}),
        require_api_key=True,
    )
    assert errors == [
        {
            "field": "configuration.advanced.auth_header",
            "message": 'is required when advanced.auth is "header" '
            "(the name of the header that carries the key, e.g. X-Api-Key)",
        }
    ]


def test_a_configuration_error_answer_lists_every_problem_under_the_prefix() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SourceConfig.parse({"url": "", "is_stream": "maybe", "advanced": {"proxy": 5}})
    body = ApiError.from_config_error(caught.value, "configuration").body
    assert [e["field"] for e in body["errors"]] == [
        "configuration.url",
        "configuration.is_stream",
        "configuration.advanced.proxy",
    ]
    assert body["message"].startswith("invalid request: configuration.url: is required: ")
    payload = ApiError.from_config_error(ConfigurationError("bad", field="payload"), "payload")
    assert payload.body["errors"] == [{"field": "payload", "message": "bad"}]
    unnamed = ApiError.from_config_error(ConfigurationError("no field"), "configuration")
    assert unnamed.body["errors"] == [{"field": "configuration", "message": "no field"}]


def test_key_cipher_round_trip_and_wrong_key() -> None:
    cipher = KeyCipher(Fernet.generate_key().decode())
    token = cipher.encrypt(CANARY)
    assert CANARY not in token and cipher.decrypt(token) == CANARY
    with pytest.raises(ValueError, match="secret key changed"):
        KeyCipher(Fernet.generate_key().decode()).decrypt(token)
    with pytest.raises(ValueError, match="not a Fernet key"):
        KeyCipher("short")


def test_secret_fields_come_from_the_spec_markers() -> None:
    properties = resources.spec()["connection_specification"]["properties"]
    fields = SecretFields(secret_paths(properties))
    assert fields.paths == ("api_key", "advanced.secret_headers", "advanced.proxy")
    raw = make_config("http://x/v1/chat/completions")
    raw["advanced"] = {"secret_headers": {"X-K": CANARY}, "proxy": "", "headers": "{}"}
    public, given = fields.split(raw)
    assert CANARY not in repr(public) and public["advanced"] == {"headers": "{}"}
    assert given == {
        "api_key": CANARY,
        "advanced.secret_headers": '{"X-K":"' + CANARY + '"}',
        "advanced.proxy": "",
    }
    masked = fields.masked(public, given)
    assert masked["api_key"] == masked["advanced"]["secret_headers"] == "********"
    assert masked["advanced"]["proxy"] == ""
    # Masked or left-out values are not "given": the stored ones are kept.
    assert fields.split(masked)[1] == {"advanced.proxy": ""}


def test_migration_0002_moves_the_stored_key(tmp_path: Path) -> None:
    engine = open_engine(database_url("", tmp_path / "old.db"))
    config = Config()
    config.set_main_option("script_location", "openai_compat.app.db:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "insert into connectors (name, connector_name, configuration, "
                "api_key_encrypted, created_at, updated_at) values "
                "('a', 'openai_compatible', '{}', 'tok', '2026-01-01', '2026-01-01'), "
                "('b', 'openai_compatible', '{}', NULL, '2026-01-01', '2026-01-01')"
            )
        )
    migrate(engine)
    rows = ConnectorStore(engine).list()
    assert [row.secrets_encrypted for row in rows] == [{"api_key": "tok"}, {}]
    engine.dispose()


def test_saved_configurations_are_cached_by_version_and_env_values_read_each_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai_compat.app.application import create_app
    from openai_compat.app.connectors.services import ConnectorServices
    from openai_compat.app.settings import AppSettings

    services: ConnectorServices = create_app(
        AppSettings(data_dir=tmp_path, token="t")
    ).state.container.services
    url = "http://127.0.0.1:9/v1/chat/completions"

    def save(config: dict[str, object]) -> int:
        public, secrets = services.secret_fields.split(config)
        return services.store.create(
            "c", public, services.encrypt_secrets(secrets), lambda stored: stored.id
        )

    plain = save(make_config(url))
    first = asyncio.run(services.usable_saved(plain))
    assert first.api_key.get_secret_value() == CANARY
    assert asyncio.run(services.usable_saved(plain)) is first  # unchanged row: no new parse
    public, secrets = services.secret_fields.split(make_config(url, api_key="sk-new"))
    services.store.update(plain, "c", public, services.encrypt_secrets(secrets), lambda s: s)
    assert asyncio.run(services.usable_saved(plain)).api_key.get_secret_value() == "sk-new"

    monkeypatch.setenv("OC_UNIT_KEY", "sk-one")
    referenced = save(make_config(url, api_key='ENV["OC_UNIT_KEY"]'))
    assert asyncio.run(services.usable_saved(referenced)).api_key.get_secret_value() == "sk-one"
    monkeypatch.setenv("OC_UNIT_KEY", "sk-two")
    assert asyncio.run(services.usable_saved(referenced)).api_key.get_secret_value() == "sk-two"
    services.store.engine.dispose()
