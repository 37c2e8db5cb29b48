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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError

__all__ = ["CACHE_MODES", "CachedAnswer", "ResponseCache", "request_key"]

CACHE_MODES = ("read-write", "read-only", "refresh")
# Keys per query of `ResponseCache.get_keys` (SQLite allows at least 999 parameters).
_MAX_KEYS = 500
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
    ``write_batch``: answers kept back and stored together, in one transaction, up to this
    many (or for up to ``write_delay_s``); `flush` and `close` store what is kept. The default,
    1, stores each answer at once; a batch run stores 64 at a time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str = "read-write",
        *,
        timeout_s: float = 30.0,
        write_batch: int = 1,
        write_delay_s: float = 1.0,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ConfigurationError(
                f"unknown cache mode {mode!r}; use one of {', '.join(CACHE_MODES)}",
                field="cache_mode",
            )
        self.path = os.fspath(path)
        self.mode = mode
        self.timeout_s = timeout_s
        self.write_batch = max(1, int(write_batch))
        self.write_delay_s = write_delay_s
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._pending: list[tuple[str, str, str | None, float]] = []

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
        """Store the answers kept back, and close the connection (a later use opens it)."""
        if self._connection is not None and self._pid == os.getpid():
            try:
                self.flush()
            finally:
                self._connection.close()
        self._connection = None
        self._pending = []

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
        # The path and the options cross processes; a connection (and what it kept) cannot.
        return {
            "path": self.path,
            "mode": self.mode,
            "timeout_s": self.timeout_s,
            "write_batch": self.write_batch,
            "write_delay_s": self.write_delay_s,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["path"],
            state["mode"],
            timeout_s=state["timeout_s"],
            write_batch=state["write_batch"],
            write_delay_s=state["write_delay_s"],
        )

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
        return self.get_keys([key]).get(key)

    def get_keys(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        """The stored answers under these digests (one query for up to 500 of them)."""
        found: dict[str, CachedAnswer] = {}
        db = self._db()
        for start in range(0, len(keys), _MAX_KEYS):
            part = keys[start : start + _MAX_KEYS]
            marks = ",".join("?" * len(part))
            query = (
                "SELECT key, response, request_id, created_at FROM responses "
                f"WHERE key IN ({marks})"
            )
            for key, text, request_id, created_at in db.execute(query, part):
                response = json.loads(text)
                if isinstance(response, dict):
                    found[key] = CachedAnswer(response, request_id, created_at)
        return found

    def get_many(self, url: str, bodies: Sequence[Mapping[str, Any]]) -> list[CachedAnswer | None]:
        """The stored answers to ``bodies`` sent to ``url``, in order (None: not stored)."""
        if not self.reads:
            return [None] * len(bodies)
        keys: list[str | None] = []
        for body in bodies:
            try:
                keys.append(request_key(url, body))
            except ValueError:
                keys.append(None)
        found = self.get_keys([key for key in keys if key is not None])
        return [None if key is None else found.get(key) for key in keys]

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
        now = time.time()
        self._pending.append((key, text, request_id, now))
        oldest = self._pending[0][3]
        if len(self._pending) >= self.write_batch or now - oldest >= self.write_delay_s:
            self.flush()
        return True

    def flush(self) -> None:
        """Store the answers kept back (one transaction)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO responses (key, response, request_id, created_at) "
                "VALUES (?, ?, ?, ?)",
                pending,
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def __len__(self) -> int:
        self.flush()
        row = self._db().execute("SELECT count(*) FROM responses").fetchone()
        return int(row[0])
