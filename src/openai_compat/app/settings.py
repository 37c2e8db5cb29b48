"""Where the application keeps its data and which endpoint addresses it accepts.

Every setting has a command-line option and an environment variable; the command line
wins. Nothing here touches the disk: ``credentials`` and ``database`` do, at start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RUNS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_RUN_LEASE_S",
    "AppSettings",
    "default_data_dir",
    "env_count",
    "env_flag",
    "env_seconds",
    "env_size",
]

_APP_NAME = "openai-compat"
# A connector's configuration is a few kB; a payload with a long prompt well under a MB.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# An uploaded dataset for a run: streamed to disk, never held in memory.
DEFAULT_MAX_UPLOAD_BYTES = 1024 * 1024 * 1024
# Runs executed at once by one instance, and how long a run's lease lasts unrenewed.
DEFAULT_MAX_RUNS = 2
DEFAULT_RUN_LEASE_S = 30.0
# A Batches API input file, as OpenAI caps it: 200 MB, 50,000 lines.
DEFAULT_BATCH_MAX_FILE_BYTES = 200 * 1024 * 1024
DEFAULT_BATCH_MAX_LINES = 50_000


def default_data_dir() -> Path:
    """``$OPENAI_COMPAT_DATA_DIR``, else the per-user data directory of the platform."""
    configured = os.environ.get("OPENAI_COMPAT_DATA_DIR", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir(_APP_NAME, appauthor=False))


def env_size(name: str, default: int) -> int:
    """The environment variable ``name`` as a positive number of bytes, else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive whole number of bytes, got {raw!r}")
    return int(raw)


def env_count(name: str, default: int) -> int:
    """The environment variable ``name`` as a positive whole number, else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


def env_seconds(name: str, default: float) -> float:
    """The environment variable ``name`` as a positive number of seconds, else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def env_flag(name: str) -> bool:
    """True when the environment variable ``name`` is set to 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class AppSettings:
    """The application's settings.

    ``database_url`` empty means the embedded SQLite file ``openai-compat.db`` in
    ``data_dir``. ``allow_link_local`` lets endpoints point at link-local and cloud
    metadata addresses (refused by default); ``refuse_private`` refuses loopback and
    private networks too (allowed by default: self-hosted models live there).
    ``max_body_bytes`` caps a request body (413 above it).

    Runs: ``max_upload_bytes`` caps an uploaded dataset; ``max_runs`` runs execute at once
    in this instance; a run's lease lasts ``run_lease_s`` seconds unrenewed (another
    instance takes over a dead one's runs after it); ``metrics_token``, when set, is
    accepted on ``/metrics`` besides the application's token.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""
    token: str | None = None
    secret_key: str | None = None
    allow_link_local: bool = False
    refuse_private: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_runs: int = DEFAULT_MAX_RUNS
    run_lease_s: float = DEFAULT_RUN_LEASE_S
    metrics_token: str | None = None
    # The Batches API: an input file's caps (bytes, lines).
    batch_max_file_bytes: int = DEFAULT_BATCH_MAX_FILE_BYTES
    batch_max_lines: int = DEFAULT_BATCH_MAX_LINES

    @classmethod
    def from_env(
        cls,
        *,
        data_dir: Path | str | None = None,
        database_url: str | None = None,
        allow_link_local: bool | None = None,
        refuse_private: bool | None = None,
        max_body_bytes: int | None = None,
        max_upload_bytes: int | None = None,
        max_runs: int | None = None,
    ) -> AppSettings:
        """Settings from explicit values, falling back to the environment."""
        return cls(
            data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(),
            database_url=(
                database_url
                if database_url is not None
                else os.environ.get("DATABASE_URL", "").strip()
            ),
            token=os.environ.get("OPENAI_COMPAT_TOKEN", "").strip() or None,
            secret_key=os.environ.get("OPENAI_COMPAT_SECRET_KEY", "").strip() or None,
            allow_link_local=(
                allow_link_local
                if allow_link_local is not None
                else env_flag("OPENAI_COMPAT_ALLOW_LINK_LOCAL")
            ),
            refuse_private=(
                refuse_private
                if refuse_private is not None
                else env_flag("OPENAI_COMPAT_REFUSE_PRIVATE")
            ),
            max_body_bytes=(
                max_body_bytes
                if max_body_bytes is not None
                else env_size("OPENAI_COMPAT_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
            ),
            max_upload_bytes=(
                max_upload_bytes
                if max_upload_bytes is not None
                else env_size("OPENAI_COMPAT_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)
            ),
            max_runs=(
                max_runs
                if max_runs is not None
                else env_count("OPENAI_COMPAT_MAX_RUNS", DEFAULT_MAX_RUNS)
            ),
            run_lease_s=env_seconds("OPENAI_COMPAT_RUN_LEASE_S", DEFAULT_RUN_LEASE_S),
            metrics_token=os.environ.get("OPENAI_COMPAT_METRICS_TOKEN", "").strip() or None,
            batch_max_file_bytes=env_size(
                "OPENAI_COMPAT_BATCH_MAX_FILE_BYTES", DEFAULT_BATCH_MAX_FILE_BYTES
            ),
            batch_max_lines=env_count("OPENAI_COMPAT_BATCH_MAX_LINES", DEFAULT_BATCH_MAX_LINES),
        )

    @property
    def sqlite_path(self) -> Path:
        """The embedded database file (used when ``database_url`` is empty)."""
        return self.data_dir / "openai-compat.db"
