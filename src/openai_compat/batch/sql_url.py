"""Database URLs of batch runs: told apart from file names, ``ENV["NAME"]`` resolved, opened.

A batch input or output may be any SQLAlchemy URL (``postgresql://``, ``sqlite:///file.db``,
any dialect installed). Its password is never shown: every message renders the URL with the
password as ``***``, and so is every query parameter that may hold a secret (libpq's
``?password=`` and ``?sslpassword=``, anything named like a password, token or key); those
values are redacted from whatever the driver said too. ``ENV["NAME"]`` works as in
configurations: the whole URL (``--input 'ENV["DATABASE_URL"]'``) or one of its parts
(``postgresql://app:ENV["PGPASSWORD"]@db/warehouse``), read from the environment when used.

This module imports SQLAlchemy only when a URL is opened, so file runs never load it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, OpenAICompatError, redact

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

__all__ = [
    "ConnectHook",
    "Connecting",
    "DatabaseError",
    "failure_text",
    "is_database_url",
    "open_database",
    "parse_database_url",
    "secret_values",
    "shown_url",
]

# The ``ENV["NAME"]`` reference of configurations (openai_compat.app.secrets.env_refs, whose package
# is the application: too heavy to import for a batch run).
_REF = r"""ENV\[\s*(["'])([A-Za-z_][A-Za-z0-9_]*)\1\s*\]"""
_WHOLE_REF = re.compile(rf"^\s*{_REF}\s*$")
_PART_REF = re.compile(_REF)
# ``dialect[+driver]://``: what SQLAlchemy's make_url parses (a Windows path never has it).
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?://")
# Schemes that are files or services, never SQLAlchemy dialects.
_NOT_DATABASES = {"http", "https", "file", "s3", "s3a", "gs", "gcs", "abfs", "az", "hdfs"}
_SQLITE_BUSY_TIMEOUT_S = 30
# Query parameters whose value may be a secret: libpq's password and sslpassword, and
# whatever another driver names like one. A file's path is masked too (passfile, sslkey):
# masking too much costs a message nothing.
_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|credential|auth", re.IGNORECASE)
# Rendered in place of a masked value, then replaced by ``***`` (which a URL would escape).
_MASKED = "MASKEDb7d04e"
# libpq waits at least 2 s to connect, whatever it is told.
_LIBPQ_MIN_CONNECT_TIMEOUT_S = 2

ConnectHook = Callable[[str, dict[str, Any]], dict[str, Any]]
"""Asked before each new connection with the dialect's name and the keywords the driver is
about to get; answers the keywords to connect with, or raises `ConfigurationError` to refuse."""


@dataclass(frozen=True)
class Connecting:
    """How an engine makes its connections: a hook asked at each one, and time limits.

    ``connect_timeout_s``: the most a connection may take to be made (PostgreSQL: libpq's
    ``connect_timeout``, per host tried; a smaller one in the URL is kept).
    ``statement_timeout_s``: the most one statement may run (PostgreSQL: the server's
    ``statement_timeout``, set when the connection starts). Other dialects get the hook
    only: their drivers name these limits each their own way.
    """

    hook: ConnectHook | None = None
    connect_timeout_s: float | None = None
    statement_timeout_s: float | None = None


class DatabaseError(OpenAICompatError):
    """A database of a batch run failed part way (a write, a read); the message has no password.

    Failures found before anything is sent (a connection refused, a table with other
    columns) are `ConfigurationError` instead.
    """


def is_database_url(text: str | os.PathLike[str]) -> bool:
    """True when ``text`` is a database URL (``dialect[+driver]://...`` or ``ENV["NAME"]``).

    >>> is_database_url("sqlite:///rows.db"), is_database_url("postgresql+psycopg://db/x")
    (True, True)
    >>> is_database_url("rows.jsonl"), is_database_url("s3://bucket/rows.jsonl")
    (False, False)
    """
    if not isinstance(text, str):
        return False
    if _WHOLE_REF.match(text):
        return True
    match = _SCHEME.match(text)
    return match is not None and text.split(":", 1)[0].lower() not in _NOT_DATABASES


def _env(name: str, field: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigurationError(
            f'refers to the environment variable {name} (ENV["{name}"]), which is not set; '
            "export it, or write the value itself",
            field=field,
        )
    return value


def parse_database_url(text: str, field: str, *, environment: bool = True) -> URL:
    """The SQLAlchemy URL of ``text``, with ``ENV["NAME"]`` (whole or in a part) resolved.

    ``postgresql://`` and ``postgres://`` get the psycopg (v3) driver, as in the application.
    ``environment=False`` is for URLs from someone other than the process's owner (the
    application's HTTP API): an ``ENV["NAME"]`` anywhere in them is refused, never read,
    since the process's environment holds its own secrets.

    >>> parse_database_url('postgresql://u:ENV["PGPASSWORD"]@db/x', "input", environment=False)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    openai_compat.errors.ConfigurationError: input: ENV["NAME"] is not read ...
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not environment and _PART_REF.search(text):
        raise ConfigurationError(
            'ENV["NAME"] is not read from the environment for a database URL given through '
            "the application's API (that environment holds the application's own secrets); "
            "write the URL itself: its password is kept encrypted and never shown",
            field=field,
        )
    whole = _WHOLE_REF.match(text)
    if whole:
        text = _env(whole.group(2), field)
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        # The text may hold a password: only its scheme is shown.
        scheme = text.split("://", 1)[0] if "://" in text else "?"
        raise ConfigurationError(
            f"cannot read the database URL (scheme {scheme!r}); write it as "
            "dialect[+driver]://user:password@host:port/database, e.g. sqlite:///rows.db",
            field=field,
        ) from None
    parts: dict[str, Any] = {}
    for part in ("username", "password", "host", "database"):
        value = getattr(url, part)
        if isinstance(value, str) and _PART_REF.search(value):
            parts[part] = _PART_REF.sub(lambda m: _env(m.group(2), field), value)
    if parts:
        url = url.set(**parts)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def _secret_parameter(name: str) -> bool:
    return _SECRET_PARAMETER.search(name) is not None


def secret_values(url: URL) -> list[str]:
    """The secrets ``url`` holds: its password, and the values of its secret parameters."""
    found = [url.password] if isinstance(url.password, str) and url.password else []
    for name, value in url.query.items():
        if _secret_parameter(name):
            values = (value,) if isinstance(value, str) else value
            found += [v for v in values if v]
    return found


def shown_url(url: URL) -> str:
    """``url`` as messages show it: the password, and every secret parameter, as ``***``.

    >>> from sqlalchemy.engine import make_url
    >>> shown_url(make_url("postgresql://u:pw@db/x?password=pw2&sslpassword=pw3&sslmode=require"))
    'postgresql://u:***@db/x?password=***&sslmode=require&sslpassword=***'
    """
    masked = {
        name: (_MASKED if isinstance(value, str) else tuple(_MASKED for _ in value))
        for name, value in url.query.items()
        if _secret_parameter(name)
    }
    if masked:
        url = url.update_query_dict(masked)
    return url.render_as_string(hide_password=True).replace(_MASKED, "***")


def failure_text(exc: BaseException, url: URL) -> str:
    """What the driver said about ``exc``, on one line, with the URL's secrets redacted.

    A DBAPI error's own message is used (not SQLAlchemy's wrapper, which repeats the SQL
    and its parameters: row values).
    """
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return redact(text, secret_values(url))[:500]


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL: a run may read rows from a file while it writes results into the same file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _timeouts(dialect: str, params: dict[str, Any], connecting: Connecting) -> dict[str, Any]:
    """``params`` with the time limits of ``connecting`` (PostgreSQL's only)."""
    if dialect != "postgresql":
        return params
    if connecting.connect_timeout_s is not None:
        limit = max(_LIBPQ_MIN_CONNECT_TIMEOUT_S, math.ceil(connecting.connect_timeout_s))
        try:
            given = int(str(params.get("connect_timeout", "0")).strip() or "0")
        except ValueError:
            given = 0
        # 0 (or none) is "wait forever": the limit replaces it; a smaller one is kept.
        params["connect_timeout"] = str(given if 0 < given <= limit else limit)
    if connecting.statement_timeout_s is not None:
        ms = max(1, math.ceil(connecting.statement_timeout_s * 1000))
        # Given at the start of the session, not by SET: a rolled-back transaction
        # (every return to the pool) would undo a SET.
        options = str(params.get("options") or "").strip()
        params["options"] = f"{options} -c statement_timeout={ms}".strip()
    return params


def _guard_connections(engine: Engine, connecting: Connecting) -> None:
    from sqlalchemy import event

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        # A copy: the engine keeps ``cparams`` for its next connection.
        params = _timeouts(dialect.name, dict(cparams), connecting)
        if connecting.hook is not None:
            params = connecting.hook(dialect.name, params)
        return dialect.connect(*cargs, **params)

    event.listen(engine, "do_connect", connect)


def open_database(
    url: URL, field: str, *, wal: bool = False, connecting: Connecting | None = None
) -> Engine:
    """An engine for ``url``, connected once to prove it works; failures are clear errors.

    ``wal``: a SQLite file is switched to WAL mode (an output: readers and the writer of one
    file then do not block each other). ``connecting``: a hook asked at every new
    connection, and time limits. A missing dialect or driver, or a refused connection, is
    a `ConfigurationError` naming the URL without its secrets.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = shown_url(url)
    try:
        if url.get_backend_name() == "sqlite":
            engine = create_engine(
                url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
            )
            if wal and url.database not in (None, "", ":memory:"):
                event.listen(engine, "connect", _sqlite_on_connect)
        else:
            # No pool_pre_ping: the writer takes a connection for every batch, and a ping
            # each time would double its round trips; a connection lost mid-run is a
            # DatabaseError, and --resume goes on from the batches committed.
            engine = create_engine(url)
    except NoSuchModuleError:
        raise ConfigurationError(
            f"no SQLAlchemy dialect or driver {url.drivername!r} is installed (for {shown}); "
            "install it (e.g. pip install psycopg for postgresql) or fix the URL's scheme",
            field=field,
        ) from None
    except (ArgumentError, ImportError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot use the database {shown}: {failure_text(exc, url)}", field=field
        ) from None
    if connecting is not None:
        _guard_connections(engine, connecting)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigurationError(
            f"cannot connect to the database {shown}: {failure_text(exc, url)}", field=field
        ) from None
    except BaseException:
        engine.dispose()
        raise
    return engine
