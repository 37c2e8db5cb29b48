"""Pure parts of the application: ``ENV[...]`` references, field validation, key cipher."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from openai_compat import ConfigurationError
from openai_compat.app import KeyCipher, resolve_env_refs
from openai_compat.app.validation import validate_configuration
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


def test_key_cipher_round_trip_and_wrong_key() -> None:
    cipher = KeyCipher(Fernet.generate_key().decode())
    token = cipher.encrypt(CANARY)
    assert CANARY not in token and cipher.decrypt(token) == CANARY
    with pytest.raises(ValueError, match="secret key changed"):
        KeyCipher(Fernet.generate_key().decode()).decrypt(token)
    with pytest.raises(ValueError, match="not a Fernet key"):
        KeyCipher("short")
