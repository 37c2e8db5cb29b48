"""The response cache: successful answers in a SQLite file, so one request is paid once.

An answer is stored under `request_key`: the SHA-256 of the endpoint URL and the canonical
JSON of the request body (keys sorted, no spaces). Neither the URL (which may carry a key in
its query) nor any header is stored, only that digest; the API key is never part of it.

`ResponseCache` is the entry point for any process that has the file's path (a batch run, a
shard on another machine sharing a file system, a retried Spark task)::

    from openai_compat.batch import ResponseCache

    cache = ResponseCache("answers.sqlite")            # mode "read-write" (the default)
    hit = cache.get(url, body)                           # a CachedAnswer, or None
    if hit is None:
        answer = send(url, body)
        cache.put(url, body, answer, request_id="req_1")
    cache.close()

Several processes may share one file: it is in WAL mode (readers never wait for the
writer), each write is one short transaction, and a writer waits up to ``timeout_s`` for
another's lock instead of failing. A `ResponseCache` opens its connection on first use, in
the process that uses it (a pickled or forked copy opens its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError

__all__ = ["CACHE_MODES", "CachedAnswer", "ResponseCache", "request_key"]

CACHE_MODES = ("read-write", "read-only", "refresh")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses ("
    " key TEXT PRIMARY KEY, response TEXT NOT NULL, request_id TEXT,"
    " created_at REAL NOT NULL) WITHOUT ROWID"
)


def request_key(url: str, body: Mapping[str, Any]) -> str:
    """The digest an answer is stored under: SHA-256 of the URL and the canonical body.

    Raises ``ValueError`` for a body JSON cannot carry (NaN, a lone surrogate): such a
    request cannot be sent either.

    >>> request_key("http://h/v1/chat/completions", {"b": 1, "a": [2]}) == request_key(
    ...     "http://h/v1/chat/completions", {"a": [2], "b": 1})
    True
    """
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    digest = hashlib.sha256(url.encode("utf-8"))
    digest.update(b"\n")
    digest.update(canonical.encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored answer: the response body, the request id it came with, when it was stored."""

    response: dict[str, Any]
    request_id: str | None
    created_at: float


class ResponseCache:
    """Answers stored in the SQLite file at ``path`` (created when missing).

    ``mode``: ``read-write`` (look up, store new answers), ``read-only`` (look up, store
    nothing; the file must exist) or ``refresh`` (never look up, store every answer anew).
    """

    def __init__(
        self, path: str | os.PathLike[str], mode: str = "read-write", *, timeout_s: float = 30.0
    ) -> None:
        if mode not in CACHE_MODES:
            raise ConfigurationError(
                f"unknown cache mode {mode!r}; use one of {', '.join(CACHE_MODES)}",
                field="cache_mode",
            )
        self.path = os.fspath(path)
        self.mode = mode
        self.timeout_s = timeout_s
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    @property
    def reads(self) -> bool:
        """True when lookups are made (every mode but ``refresh``)."""
        return self.mode != "refresh"

    @property
    def writes(self) -> bool:
        """True when answers are stored (every mode but ``read-only``)."""
        return self.mode != "read-only"

    def __repr__(self) -> str:
        return f"ResponseCache({self.path!r}, mode={self.mode!r})"

    # -- the connection ---------------------------------------------------------------------
    def open(self) -> ResponseCache:
        """Open the file now (it is opened on first use otherwise), so a bad path fails early."""
        self._db()
        return self

    def _db(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            # A forked child must not share its parent's connection.
            self._connection = self._connect()
            self._pid = os.getpid()
        return self._connection

    def _problem(self, what: str) -> ConfigurationError:
        return ConfigurationError(f"{self.path}: {what}", field="cache")

    def _connect(self) -> sqlite3.Connection:
        if os.path.isdir(self.path):
            raise self._problem("is a directory; give the path of a cache file")
        if self.mode == "read-only" and not os.path.exists(self.path):
            raise self._problem("no such cache file (--cache-mode read-only reads an existing one)")
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise self._problem(f"the folder {directory} does not exist")
        try:
            connection = sqlite3.connect(
                self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._problem(f"cannot open the cache file: {exc}") from None
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            if self.writes:
                connection.execute("PRAGMA journal_mode = WAL")
                # WAL with NORMAL survives a crashed process (not a power cut): enough for a
                # cache, and a commit then costs no fsync.
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.execute(_SCHEMA)
            else:
                connection.execute("SELECT key FROM responses LIMIT 0")
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise self._problem(f"is not a response cache ({exc}); choose another file") from None
        return connection

    def close(self) -> None:
        """Close the connection (a later use opens it again)."""
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    def __enter__(self) -> ResponseCache:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # The path and the mode cross processes; a connection cannot.
        return {"path": self.path, "mode": self.mode, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["mode"], timeout_s=state["timeout_s"])  # type: ignore[misc]

    # -- answers ----------------------------------------------------------------------------
    def get(self, url: str, body: Mapping[str, Any]) -> CachedAnswer | None:
        """The stored answer to ``body`` sent to ``url``, or None (always None in ``refresh``)."""
        if not self.reads:
            return None
        try:
            key = request_key(url, body)
        except ValueError:
            return None
        return self.get_key(key)

    def get_key(self, key: str) -> CachedAnswer | None:
        """The stored answer under a `request_key` digest, or None."""
        row = (
            self._db()
            .execute("SELECT response, request_id, created_at FROM responses WHERE key = ?", (key,))
            .fetchone()
        )
        if row is None:
            return None
        response = json.loads(row[0])
        return CachedAnswer(response, row[1], row[2]) if isinstance(response, dict) else None

    def put(
        self,
        url: str,
        body: Mapping[str, Any],
        response: Mapping[str, Any],
        *,
        request_id: str | None = None,
    ) -> bool:
        """Store ``response`` as the answer to ``body`` at ``url``; False when nothing was
        stored (``read-only``, or a body or answer JSON cannot carry)."""
        if not self.writes:
            return False
        try:
            key = request_key(url, body)
            text = json.dumps(response, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            text.encode("utf-8")  # a lone surrogate cannot be stored
        except ValueError:
            return False
        self._db().execute(
            "INSERT OR REPLACE INTO responses (key, response, request_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (key, text, request_id, time.time()),
        )
        return True

    def __len__(self) -> int:
        row = self._db().execute("SELECT count(*) FROM responses").fetchone()
        return int(row[0])
