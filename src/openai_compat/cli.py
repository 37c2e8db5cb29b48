"""The ``openai-compat`` command line: a thin layer over the connector.

Protocol messages go to stdout, one JSON object per line; human diagnostics go to
stderr. Exit codes: 0 done (a failed check is still a result), 1 the operation failed
(an ``error`` log was emitted), 2 the arguments are unusable (no such file, ...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Sequence

from ._json import read_json_file, read_text_file
from ._sync import run_sync
from .connector import OpenAICompatibleConnector
from .errors import UsageError
from .protocol import ProtocolMessage

__all__ = ["main"]


def _emit(message: ProtocolMessage) -> None:
    sys.stdout.write(message.to_json() + "\n")
    sys.stdout.flush()


def _on_retry(retry_number: int, error: BaseException, wait: float) -> None:
    print(f"openai-compat: retry {retry_number} in {wait:.2f} s after: {error}", file=sys.stderr)


async def _stream(messages: AsyncIterator[ProtocolMessage]) -> int:
    failed = False
    async for message in messages:
        _emit(message)
        if (
            message.type == "log"
            and message.log is not None
            and message.log.level
            in (
                "error",
                "fatal",
            )
        ):
            failed = True
            print(f"openai-compat: {message.log.message}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_spec(args: argparse.Namespace, connector: OpenAICompatibleConnector) -> int:
    _emit(connector.spec())
    return 0


def _cmd_check(args: argparse.Namespace, connector: OpenAICompatibleConnector) -> int:
    if args.capabilities:
        from .capabilities import capabilities_record

        return capabilities_record(read_json_file(args.config, "config"))
    _emit(connector.check_connection(read_json_file(args.config, "config")))
    return 0


def _cmd_discover(args: argparse.Namespace, connector: OpenAICompatibleConnector) -> int:
    message = connector.discover(read_json_file(args.config, "config") if args.config else None)
    _emit(message)
    return 1 if message.type == "log" else 0


def _cmd_read(args: argparse.Namespace, connector: OpenAICompatibleConnector) -> int:
    if args.sync_config:
        if args.config or args.payload:
            raise UsageError("give either --sync-config, or --config with --payload, not both")
        sync_config = read_json_file(args.sync_config, "sync config")
        return run_sync(_stream(connector.aread(sync_config, assemble=args.assemble)))
    if not (args.config and args.payload):
        raise UsageError("read needs --config FILE and --payload FILE, or --sync-config FILE")
    config = read_json_file(args.config, "config")
    # Passed as text: the connector rejects anything but a JSON object, before sending.
    payload = read_text_file(args.payload)
    return run_sync(_stream(connector.arun_model(config, payload, assemble=args.assemble)))


def _cmd_mock_server(args: argparse.Namespace, connector: OpenAICompatibleConnector) -> int:
    from .testing import ProviderLimits, Slots, serve_forever

    for name in ("limit_rpm", "limit_tpm", "slots"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            option = "--" + name.replace("_", "-")
            print(f"openai-compat mock-server: {option} must be more than 0", file=sys.stderr)
            return 2
    limits = None
    if args.limit_rpm is not None or args.limit_tpm is not None:
        limits = ProviderLimits(args.limit_rpm, args.limit_tpm)
    if args.share < 0:
        print("openai-compat mock-server: --share must be 0 or more", file=sys.stderr)
        return 2
    slots = None
    if args.slots is not None:
        slots = Slots(args.slots, args.service_ms / 1000, share=args.share)
    serve_forever(args.host, args.port, limits=limits, slots=slots)
    return 0


def _cmd_serve(args: argparse.Namespace, connector: OpenAICompatibleConnector) -> int:
    from .app import AppSettings, serve

    settings = AppSettings.from_env(
        data_dir=args.data_dir,
        database_url=args.database,
        allow_link_local=True if args.allow_link_local else None,
        refuse_private=True if args.refuse_private else None,
    )
    serve(settings, args.host, args.port, access_log=args.access_log)
    return 0


def _cmd_batch(args: argparse.Namespace, connector: OpenAICompatibleConnector) -> int:
    from .batch.cli import run_batch_command

    return run_batch_command(args, retry=connector.retry)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="openai-compat",
        description="Talk to any OpenAI-compatible chat-completions endpoint.",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=None,
        metavar="N",
        help="retries on connection errors, timeouts, 408/409/429 and 5xx (default 2)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("spec", help="print the connector specification")
    p.set_defaults(func=_cmd_spec)

    p = sub.add_parser("check", help="check the connection of a configuration")
    p.add_argument("--config", required=True, metavar="FILE", help="configuration JSON (- = stdin)")
    p.add_argument(
        "--capabilities",
        action="store_true",
        help="measure what the server supports (json_schema, tools, ...) with tiny requests",
    )
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("discover", help="print the catalog")
    p.add_argument("--config", metavar="FILE", help="configuration JSON (optional)")
    p.set_defaults(func=_cmd_discover)

    p = sub.add_parser("read", help="send one payload and print the records")
    p.add_argument("--config", metavar="FILE", help="configuration JSON (- = stdin)")
    p.add_argument("--payload", metavar="FILE", help="request body JSON (- = stdin)")
    p.add_argument("--sync-config", metavar="FILE", help="a sync config JSON instead of both")
    p.add_argument(
        "--assemble",
        action="store_true",
        help="after streamed chunks, emit one record with the assembled chat.completion",
    )
    p.set_defaults(func=_cmd_read)

    from .batch.cli import add_batch_parser

    add_batch_parser(sub).set_defaults(func=_cmd_batch)

    p = sub.add_parser("mock-server", help="run the bundled scripted OpenAI-compatible server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--limit-rpm", type=int, metavar="N", help="a provider's requests a minute (429 over it)"
    )
    p.add_argument(
        "--limit-tpm", type=int, metavar="M", help="a provider's tokens a minute (429 over it)"
    )
    p.add_argument(
        "--slots", type=int, metavar="K", help="serve K requests at a time, queue the rest"
    )
    p.add_argument(
        "--service-ms",
        type=float,
        default=100.0,
        metavar="MS",
        help="with --slots: each request's service time (default 100)",
    )
    p.add_argument(
        "--share",
        type=float,
        default=0.0,
        metavar="F",
        help="with --slots: each other busy slot adds F of the service time (slots batched on "
        "one compute, as in continuous batching; default 0)",
    )
    p.set_defaults(func=_cmd_mock_server)

    p = sub.add_parser("serve", help="run the application: HTTP API and web page")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="token, secret key and SQLite database (env OPENAI_COMPAT_DATA_DIR; default: "
        "the per-user data directory)",
    )
    p.add_argument(
        "--database",
        metavar="URL",
        help="a PostgreSQL URL instead of the SQLite file (env DATABASE_URL)",
    )
    p.add_argument(
        "--allow-link-local",
        action="store_true",
        help="allow endpoints on link-local / cloud metadata addresses "
        "(env OPENAI_COMPAT_ALLOW_LINK_LOCAL=1)",
    )
    p.add_argument(
        "--refuse-private",
        action="store_true",
        help="refuse endpoints on loopback and private networks "
        "(env OPENAI_COMPAT_REFUSE_PRIVATE=1)",
    )
    p.add_argument("--access-log", action="store_true", help="log one line per request")
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``openai-compat`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    retry = None
    if args.retries is not None:
        from .retries import RetryPolicy

        retry = RetryPolicy(max_retries=max(0, args.retries))
    connector = OpenAICompatibleConnector(retry=retry, on_retry=_on_retry)
    traced = args.func in _TRACED and _start_telemetry()
    try:
        code: int = args.func(args, connector)
    except UsageError as exc:
        print(f"openai-compat: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if traced:
            from .observability import shutdown

            shutdown()  # a short command's spans are exported before it exits
    return code


# The commands that send requests export their traces and metrics when OTEL_* asks.
_TRACED = (_cmd_check, _cmd_read, _cmd_serve, _cmd_batch)


def _start_telemetry() -> bool:
    from .observability import configure_from_env

    return configure_from_env()
