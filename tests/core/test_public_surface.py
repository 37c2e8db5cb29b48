"""The package's public surface: pinned names, one error hierarchy, a light import."""

from __future__ import annotations

import builtins
import importlib
import pkgutil
import subprocess
import sys

import openai_compat
from openai_compat import errors

PUBLIC = {
    "AdvancedOptions", "AuthenticationError", "BadRequestError", "ConflictError",
    "InternalServerError", "NotFoundError", "PermissionDeniedError", "RateLimitError",
    "UnprocessableEntityError", "BatchResult", "BatchRun", "BatchSummary", "Catalog", "ChunkAssembler",
    "Completion", "ConfigurationError", "ConnectError", "ConnectionStatus",
    "ConnectorSpecification", "Endpoint", "EndpointError", "Exchange", "FieldProblem",
    "LogMessage", "MetaData", "OpenAICompatError", "OpenAICompatibleConnector", "OutputError",
    "PayloadBuilder", "ProtocolMessage", "RecordMessage", "RequestTimeout", "RetryPolicy",
    "RowMappingError", "SourceConfig", "StreamError", "SyncConfig", "TransportError",
    "UsageError", "__version__", "load_config", "run_batch", "run_batch_sync",
}  # fmt: skip


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert set(openai_compat.__all__) == PUBLIC
    assert len(openai_compat.__all__) == len(PUBLIC)
    for name in openai_compat.__all__:
        assert getattr(openai_compat, name) is not None


def test_star_import_does_not_shadow_the_builtin_timeout_error() -> None:
    namespace: dict[str, object] = {}
    exec("from openai_compat import *", namespace)
    assert "TimeoutError" not in namespace
    # The earlier name is still importable, as an alias of the new one.
    assert openai_compat.TimeoutError is errors.RequestTimeout
    assert openai_compat.TimeoutError is not builtins.TimeoutError


# Signals between two layers of the package, raised and caught inside it: outside the tree,
# so that no caller's ``except OpenAICompatError`` can take one for a finished error.
INTERNAL_SIGNALS = {
    "openai_compat._transports._base.TransportFailure",
    # A connect hook's refusal, turned into a TransportFailure by the transport it refuses.
    "openai_compat._transports._base.ConnectRefused",
    # A run store's write finding the run taken over: rolls the write back, caught there.
    "openai_compat.app.runs.store._Lost",
}


def test_every_error_class_the_package_defines_is_in_the_one_hierarchy() -> None:
    found: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages(openai_compat.__path__, "openai_compat."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue  # Alembic's scripts run inside alembic; __main__ runs the CLI.
        if info.name.startswith("openai_compat.testing"):
            continue  # The scripted server's own control flow, raised and caught inside it.
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.startswith("openai_compat")
            ):
                found.add(value)
    assert {errors.UsageError, errors.OutputError, openai_compat.RowMappingError} <= found
    outside = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in found
        if not issubclass(cls, errors.OpenAICompatError)
    )
    assert outside == sorted(INTERNAL_SIGNALS)


def test_import_is_light() -> None:
    heavy = ["tqdm", "aiolimiter", "aiohttp", "fastapi", "sqlalchemy", "uvloop", "pyarrow",
             "openai_compat.batch", "openai_compat.app"]  # fmt: skip
    code = (
        "import sys, openai_compat\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
        "openai_compat.run_batch_sync\n"
        "print('openai_compat.batch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["[]", "True"]
