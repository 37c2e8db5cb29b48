"""`MockServer`: the mock app served by uvicorn on a real socket, in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from ._app import DropConnection, MockApp, RecordedRequest
from ._limits import ProviderLimits, Slots
from ._replies import Reply

__all__ = ["MockServer", "serve_forever"]

_START_TIMEOUT_S = 10.0
_HTTP_IMPL = "httptools" if importlib.util.find_spec("httptools") else "h11"


class _QuietDrops(logging.Filter):
    """Drop uvicorn's tracebacks for connections the mock aborts on purpose (or at stop)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection | asyncio.CancelledError)


_quiet_lock = threading.Lock()


def _silence_deliberate_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    with _quiet_lock:
        if not any(isinstance(f, _QuietDrops) for f in logger.filters):
            logger.addFilter(_QuietDrops())


class _Server(uvicorn.Server):
    """uvicorn's server with a prompt stop: woken by `request_exit`, no graceful wait."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        tick_s: float,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._tick_s = tick_s
        self._on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    async def main_loop(self) -> None:
        assert self._wake is not None
        # on_tick counts tenths of a second (it refreshes the Date header every 10).
        step = max(1, round(self._tick_s * 10))
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + step) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick_s)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        # Stalled or slow replies would otherwise hold the stop for their whole duration.
        tasks = list(self.server_state.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

    def request_exit(self) -> None:
        """Ask the server to stop; callable from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.request_exit()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class MockServer:
    """A scripted OpenAI-compatible chat-completions server on a real socket.

    Use as a context manager (sync or async); it listens on ``host`` (``127.0.0.1``) and a
    free port unless ``port`` is given. With an empty queue it behaves like an
    OpenAI-compatible server (see `openai_compat.testing._app` for the default behaviour and
    the ``?scenario=`` URL parameters); `enqueue` scripts the next responses.

    Args:
        latency_s: Added before every answer (benchmarks).
        api_key: When set, requests without ``Authorization: Bearer <api_key>`` get 401.
        port: Port to listen on; 0 picks a free one.
        host: Interface to listen on.
        limits: A rate-limited provider's requests and tokens a minute (`ProviderLimits`).
        slots: A capacity-limited server's slots and service time (`Slots`).
    """

    def __init__(
        self,
        latency_s: float = 0.0,
        *,
        api_key: str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        limits: ProviderLimits | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.host = host
        self.app = MockApp(api_key=api_key, latency_s=latency_s, limits=limits, slots=slots)
        self._requested_port = port
        self._port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()

    # -- addresses -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("MockServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (no path)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The full chat-completions URL, ``http://HOST:PORT/v1/chat/completions``."""
        return f"{self.base_url}/v1/chat/completions"

    # -- scripting -------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Queue replies: the next requests (any path and method) get them, in order."""
        self.app.enqueue(*replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests, oldest first (the last 100,000 are kept)."""
        return self.app.requests

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        return self.app.pending

    def clear(self) -> None:
        """Forget recorded requests and queued replies."""
        self.app.clear()

    # -- lifecycle -------------------------------------------------------------------------
    def _make_server(
        self,
        *,
        log_config: dict[str, Any] | None,
        tick_s: float,
        on_started: Callable[[], None] | None = None,
    ) -> _Server:
        _silence_deliberate_drops()
        config = uvicorn.Config(
            self.app,
            http=_HTTP_IMPL,
            ws="none",
            lifespan="off",
            interface="asgi3",
            # Avoid the proxy-headers middleware (per-request cost, and nothing to trust).
            proxy_headers=False,
            access_log=False,
            log_config=log_config,
            log_level=logging.WARNING,
            timeout_graceful_shutdown=0,
            backlog=2048,
        )
        return _Server(config, tick_s=tick_s, on_started=on_started)

    def start(self) -> None:
        """Start serving in a daemon thread; returns once the port accepts connections."""
        with self._state_lock:
            if self._thread is not None:
                raise RuntimeError("MockServer is already started")
            sock = _bind(self.host, self._requested_port)
            self._port = sock.getsockname()[1]
            server = self._make_server(log_config=None, tick_s=1.0)
            thread = threading.Thread(
                target=server.run,
                kwargs={"sockets": [sock]},
                name=f"MockServer-{self._port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
            thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"MockServer failed to start on {self.host}:{self._port}")
            time.sleep(0.001)

    def stop(self) -> None:
        """Stop serving, cancelling in-flight replies (stalls end at once). Idempotent."""
        with self._state_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        server.request_exit()
        thread.join(timeout=5.0)

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl+C (returns) or SIGTERM; for the CLI.

        Prints the chat-completions URL to stderr once the server is ready.
        """
        sock = _bind(self.host, self._requested_port)
        self._port = sock.getsockname()[1]

        def announce() -> None:
            print(f"Mock OpenAI-compatible server listening on {self.url}", file=sys.stderr)
            sys.stderr.flush()

        # Signal handlers only run when the loop wakes up, so poll like uvicorn does.
        server = self._make_server(
            log_config=uvicorn.config.LOGGING_CONFIG, tick_s=0.1, on_started=announce
        )
        # uvicorn re-raises the captured SIGINT after its clean stop; Ctrl+C is a normal exit.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])

    def __enter__(self) -> MockServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> MockServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    api_key: str | None = None,
    latency_s: float = 0.0,
    limits: ProviderLimits | None = None,
    slots: Slots | None = None,
) -> None:
    """Run a `MockServer` in the foreground (``openai-compat mock-server``)."""
    server = MockServer(
        latency_s, api_key=api_key, port=port, host=host, limits=limits, slots=slots
    )
    server.serve_forever()
