"""Real servers for the application tests: the app in its own process, and PostgreSQL.

``AppProcess`` runs ``openai-compat serve`` (uvicorn on 127.0.0.1, a free port, a
temporary data directory). ``PostgresCluster`` makes a throw-away cluster with Debian's
``postgresql`` binaries (initdb + pg_ctl, as the ``postgres`` user when run as root) on a
free port; if it cannot start, the tests that need it fail, they are not skipped.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

_START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppProcess:
    """``openai-compat serve`` in a child process; ``.url``, ``.token``, ``.log_text()``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str | None = None,
        token: str | None = "test-token-0123456789",
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"
        cmd = [
            sys.executable, "-m", "openai_compat", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(data_dir), *extra_args,
        ]  # fmt: skip
        if database:
            cmd += ["--database", database]
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_COMPAT_")}
        child_env.pop("DATABASE_URL", None)
        if token is not None:
            child_env["OPENAI_COMPAT_TOKEN"] = token
        child_env.update(env or {})
        self._log = open(self.log_path, "w")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=child_env
        )
        self._wait()
        self.token = token if token is not None else (data_dir / "token").read_text().strip()

    def _wait(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited at start:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the app did not start in {_START_TIMEOUT_S} s:\n{self.log_text()}")

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def client(self, token: str | None = "default", **kwargs: Any) -> httpx.Client:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def rows(self) -> list[tuple[Any, ...]]:
        """Every row of the connectors table, read straight from the database."""
        return self.query("select * from connectors")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` on the app's database directly (not through the app); rows if any."""
        if self.database:
            import psycopg

            with psycopg.connect(self.database) as conn:
                cursor = conn.execute(sql)
                return list(cursor.fetchall()) if cursor.description is not None else []
        import sqlite3

        with sqlite3.connect(self.data_dir / "openai-compat.db") as conn:
            return list(conn.execute(sql).fetchall())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: install Debian's package with "
            "`apt-get install -y postgresql` (.ci/run does it before `make test`)"
        )
    return Path(found[-1]).parent


class PostgresCluster:
    """A temporary PostgreSQL cluster on 127.0.0.1 (trust auth, user ``postgres``)."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="oc-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            # initdb refuses to run as root: the cluster belongs to the postgres user.
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )  # fmt: skip
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
