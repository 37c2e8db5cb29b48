"""Which process sent each request a test server got: found through ``/proc`` while the
request is in flight (the client's socket by its port, the process holding it, then the
first of that process's ancestors the test cares about, a Ray raylet or a Spark worker).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from openai_compat.testing._app import MockApp


class Senders:
    """The scripted server's app, noting ``owner``'s answer for each request's sender.

    ``owner`` is asked about the sender's pid and then each ancestor's in turn; the first
    answer not None is noted (None when no ancestor gets one).
    """

    def __init__(self, owner: Callable[[int], Hashable | None], **app: Any) -> None:
        self.app = MockApp(**app)
        self.owners: list[Hashable | None] = []
        self._owner = owner
        self._known: dict[int, Hashable | None] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            port = scope["client"][1]
            if port not in self._known:
                self._known[port] = self._owner_of(pid_of_port(port))
            self.owners.append(self._known[port])
        await self.app(scope, receive, send)

    def _owner_of(self, pid: int | None) -> Hashable | None:
        while pid is not None and pid > 1:
            found = self._owner(pid)
            if found is not None:
                return found
            pid = parent_of(pid)
        return None


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def name_of(pid: int) -> str:
    """The process's command name (``comm``), or "" once it has gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def pid_of_port(port: int) -> int | None:
    """The process of this machine whose established TCP socket has ``port`` as its own."""
    wanted = f"{port:04X}"
    inodes = {
        fields[9]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
        if fields[1].rsplit(":", 1)[1] == wanted and fields[3] == "01"  # 01: ESTABLISHED
    }
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():  # the server's own end
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(entry)
        except OSError:
            continue
    return None
