"""The sign-in token and the key that encrypts API keys at rest.

Each comes from the environment or, on first start, is generated into an owner-only
(0600) file of the data directory and reused afterwards. API keys are encrypted with
Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``): a stored row never holds a
key in clear, and a row copied to a database with another secret key cannot be read.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers

__all__ = [
    "MIN_TOKEN_LENGTH",
    "KeyCipher",
    "Provisioned",
    "bearer_matches",
    "owner_only_dir",
    "provision_secret_key",
    "provision_token",
    "tokens_match",
    "weak_token_warning",
]

TOKEN_FILE = "token"
SECRET_KEY_FILE = "secret.key"
# A generated token has 43 characters; below 16 a guessing attack becomes practical.
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Provisioned:
    """A credential and where it came from; ``generated`` is True on the start that made it."""

    value: str
    source: str
    generated: bool = False


def owner_only_dir(path: Path) -> None:
    """Create the directory ``path`` if needed and make it owner-only (0700).

    It holds the token, the secret key and the SQLite file: nobody else needs to list it.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_owner_only(path: Path, value: str) -> bool:
    """Create ``path`` (mode 0600) holding ``value``; False if it already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return True


def _read_or_create(path: Path, make: str) -> Provisioned:
    path.parent.mkdir(parents=True, exist_ok=True)
    created = _write_owner_only(path, make)
    os.chmod(path, 0o600)  # an older file with looser bits is tightened, not trusted as is
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise RuntimeError(f"{path} is empty; delete it to have a new one generated")
    return Provisioned(value, str(path), generated=created)


def provision_token(data_dir: Path, from_env: str | None) -> Provisioned:
    """The bearer token: ``OPENAI_COMPAT_TOKEN``, else the data directory's ``token`` file."""
    if from_env:
        return Provisioned(from_env, "OPENAI_COMPAT_TOKEN")
    return _read_or_create(data_dir / TOKEN_FILE, secrets.token_urlsafe(32))


def weak_token_warning(token: Provisioned) -> str | None:
    """A warning when the token set in ``OPENAI_COMPAT_TOKEN`` is short (never the token).

    >>> weak_token_warning(Provisioned("short", "OPENAI_COMPAT_TOKEN"))[:40]
    'OPENAI_COMPAT_TOKEN is only 5 characters'
    >>> weak_token_warning(Provisioned("x" * 16, "OPENAI_COMPAT_TOKEN")) is None
    True
    """
    if token.source != "OPENAI_COMPAT_TOKEN" or len(token.value) >= MIN_TOKEN_LENGTH:
        return None
    return (
        f"OPENAI_COMPAT_TOKEN is only {len(token.value)} characters long; use at least "
        f'{MIN_TOKEN_LENGTH} random ones (python -c "import secrets; '
        'print(secrets.token_urlsafe(32))")'
    )


def provision_secret_key(data_dir: Path, from_env: str | None) -> Provisioned:
    """The Fernet key: ``OPENAI_COMPAT_SECRET_KEY``, else the ``secret.key`` file."""
    if from_env:
        return Provisioned(from_env, "OPENAI_COMPAT_SECRET_KEY")
    return _read_or_create(data_dir / SECRET_KEY_FILE, Fernet.generate_key().decode("ascii"))


def tokens_match(given: str, expected: str) -> bool:
    """Compare two tokens in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_matches(headers: Headers, token: str) -> bool:
    """Whether ``headers`` carry ``Authorization: Bearer <token>``."""
    scheme, credentials = get_authorization_scheme_param(headers.get("authorization"))
    return scheme.lower() == "bearer" and tokens_match(credentials, token)


class KeyCipher:
    """Encrypts and decrypts API keys with one Fernet key."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ValueError(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes); "
                'make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from None

    def encrypt(self, plain: str) -> str:
        """The encrypted form of ``plain`` (ASCII text, safe to store)."""
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The clear value; ``ValueError`` if it was encrypted with another key or altered."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise ValueError(
                "a stored API key cannot be decrypted: the secret key changed since it was "
                "saved; restore OPENAI_COMPAT_SECRET_KEY (or secret.key), or enter the key again"
            ) from None
