"""Shared fixtures: one scripted server per module, and the canary API key.

The canary key is the API key of every configuration in the suite. After each test,
whatever the test printed or logged is searched for it: a leak anywhere fails the test
that caused it.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

from openai_compat import RetryPolicy
from openai_compat.testing import MockServer
from tests import _netns

# Schemathesis's hooks for the API fuzz's own process (`st run` loads them from the
# environment it is given): never imported by the suite, whose doctest collection would.
collect_ignore = ["app/fuzz_hooks.py"]

# Every Ray cluster the suite starts (in this process, in the CLI's, on every node) asks for
# a token, given through the environment, and keeps its session files in a directory of its
# own rather than the shared ~/.ray and /tmp/ray. Ray reads the mode once, when it is first
# imported: this runs before any test module imports it.
if "RAY_AUTH_MODE" not in os.environ:
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
if "RAY_TMPDIR" not in os.environ:
    _ray_tmp = tempfile.mkdtemp(prefix="oc-ray-")  # short: Ray's socket paths must fit 107 bytes
    os.makedirs(os.path.join(_ray_tmp, "ray"))
    os.environ["RAY_TMPDIR"] = _ray_tmp
    atexit.register(shutil.rmtree, _ray_tmp, ignore_errors=True)

# Hypothesis's per-example deadline (200 ms) measures the machine's load, not the code: on
# a busy 2-core machine an example that sends a real request can take longer. Off for all.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

CANARY = "sk-canary-7f3a9c1e-DO-NOT-LEAK"
FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
NO_RETRY = RetryPolicy(max_retries=0)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A ``loopback_only`` test runs again in a namespace with only loopback (`_netns`)."""
    if pyfuncitem.get_closest_marker("loopback_only") is None or _netns.inside():
        return None
    _netns.run_in_namespace(pyfuncitem)
    return True


@pytest.fixture(scope="module")
def _module_server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture
def server(_module_server: MockServer) -> Iterator[MockServer]:
    _module_server.clear()
    yield _module_server
    _module_server.clear()


def make_config(url: str, **extra: Any) -> dict[str, Any]:
    """A configuration in the original's raw shape, with the canary key."""
    config: dict[str, Any] = {
        "url": url,
        "api_key": CANARY,
        "is_stream": False,
        "config": {"timeout": 5},
        "request_format": '{"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}',
        "response_format": '{"choices": [{"message": {"content": "Hello"}}]}',
    }
    config.update(extra)
    return config


@pytest.fixture
def config(server: MockServer) -> dict[str, Any]:
    return make_config(server.url)


@pytest.fixture(autouse=True)
def _no_canary_leak(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capsys.readouterr()
    assert CANARY not in out, "the API key leaked to stdout"
    assert CANARY not in err, "the API key leaked to stderr"
    assert CANARY not in caplog.text, "the API key leaked to the logs"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A throw-away PostgreSQL cluster (Debian's package), for the application tests."""
    from tests.app_support import PostgresCluster

    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


APP_KEY_ENV = "OC_TEST_PROVIDER_KEY"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The application (``openai-compat serve`` in a child process) on each database.

    The child's environment has ``OC_TEST_PROVIDER_KEY`` = the canary, for ``ENV[...]`` tests.
    """
    from tests.app_support import AppProcess

    database = None
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres").create_database("app_tests")
    proc = AppProcess(
        tmp_path_factory.mktemp(f"app-{request.param}"),
        database=database,
        env={APP_KEY_ENV: CANARY},
    )
    yield proc
    proc.stop()
    assert CANARY not in proc.log_text(), "the API key leaked to the server log"


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    """An HTTP client of the application (``app``), signed in with its token."""
    with app.client() as c:
        yield c


@pytest.fixture(scope="module")
def keyed() -> Iterator[MockServer]:
    """A scripted server that wants the canary key: every row that succeeds used it."""
    with MockServer(api_key=CANARY) as srv:
        yield srv
