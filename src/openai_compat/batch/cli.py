"""``openai-compat batch``: a dataset through the endpoint, from the command line.

Exit codes: 0 every row succeeded; 1 some rows failed (their lines say why;
``--retry-failed`` runs them again); 2 unusable arguments or configuration; 3 the budget
(``--max-cost`` / ``--max-tokens``) was spent before every row ran (``--resume`` runs the
rest); 4 the engine's own job failed (Spark's: the message says why; ``--resume``
continues); 5 a database failed part way (the results committed before are kept:
``--resume`` finishes the run); 130 stopped by Ctrl-C / SIGTERM (``--resume`` finishes the run).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from .._json import read_json_file
from .._sync import run_sync
from ..errors import ConfigurationError
from ..retries import RetryPolicy
from ._structured_cli import add_schema_arguments, schema_options
from ._to_file import arun_batch_to_file
from .cache import CACHE_MODES
from .engines import ENGINES, EngineJobError
from .progress import PROGRESS_MODES
from .scheduler import DEFAULT_CONCURRENCY, DEFAULT_RATE, MAX_CONCURRENCY
from .sources import FORMATS
from .sql_url import DatabaseError
from .throughput import DEFAULT_MAX_CONCURRENCY, parse_concurrency
from .writers import OUTPUT_FORMATS

__all__ = ["EXIT_BUDGET_SPENT", "add_batch_parser", "run_batch_command"]

# The budget ran out with rows left: not a failure (1) nor an interruption (130).
EXIT_BUDGET_SPENT = 3

EXAMPLES = """\
examples:
  openai-compat batch --config conn.json --input tickets.csv --output results.jsonl \\
      --mapping mapping.json --outputs outputs.json --key id
  openai-compat batch ... --resume            # after a crash or Ctrl-C: finish the rest
  openai-compat batch ... --retry-failed      # run the failed rows again
  openai-compat batch ... --shard 3/8         # machine 3 of 8 (rows split by key hash)
  cat rows.jsonl | openai-compat batch --config conn.json --input - --output out.jsonl
  openai-compat batch --config conn.json --input postgresql://app@db/crm \
      --query 'SELECT id, body FROM tickets WHERE day = :day' --param day=2026-12-01 \
      --output postgresql://app@db/crm --output-table ticket_summaries --key id
  openai-compat batch --config conn.json --input batchinput.jsonl \
      --output out.jsonl --output-format openai-batch --error-file errors.jsonl
  openai-compat batch ... --cache answers.sqlite   # a request answered before costs nothing
  openai-compat batch ... --price input=0.15,output=0.60 --max-cost 5.00   # exit 3 when spent

mapping.json: [{"name": "messages.0.content", "value": "body", "value_type": "dynamic",
               "type": "string"}]   (or {{column}} placeholders in request_format)
outputs.json: [{"name": "choices.0.message.content", "as": "summary"},
               {"name": "usage.total_tokens", "as": "tokens"}]
"""


def add_batch_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` subcommand to the ``openai-compat`` parser's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "batch",
        help="run every row of a dataset through the endpoint (resumable)",
        description="Run every row of a dataset through the endpoint: rows are mapped to "
        "payloads, answers to output fields; results are appended to the output file, which "
        "is also the checkpoint for --resume.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, metavar="FILE", help="connection configuration JSON")
    p.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help="rows: .jsonl, .csv (header row) or .parquet; - = JSON Lines on stdin",
    )
    p.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="results, one per row (JSON Lines; CSV for a .csv name, Parquet for a .parquet "
        "one); - = stdout",
    )
    p.add_argument("--mapping", metavar="FILE", help="the platform's mapping list (JSON)")
    p.add_argument(
        "--outputs",
        metavar="FILE",
        help="output fields (JSON); default: the string leaves of response_format",
    )
    p.add_argument(
        "--concurrency",
        type=parse_concurrency,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default {DEFAULT_CONCURRENCY}, the catalog's; "
        f"at most {MAX_CONCURRENCY:,}); auto: found from latency and errors, up to "
        "--max-concurrency",
    )
    p.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help=f"the ceiling of --concurrency auto (default {DEFAULT_MAX_CONCURRENCY})",
    )
    p.add_argument(
        "--token-rate",
        metavar="R",
        help="token rate limit, e.g. 200000/minute (reserved before each request from its "
        "text and max_tokens, settled against its usage); default none",
    )
    p.add_argument(
        "--rows-per-request",
        type=int,
        metavar="N",
        help="embeddings: rows whose inputs share one request (default 64, at most 2,048); "
        "each row keeps its own result",
    )
    p.add_argument(
        "--rate",
        default=str(DEFAULT_RATE),
        metavar="R",
        help=f"request rate limit, e.g. 600/minute, 20/second, off (default {DEFAULT_RATE})",
    )
    p.add_argument(
        "--key",
        metavar="COLUMN",
        help="column identifying a row, unique (default: the row number); a repeated key is "
        "a failed row",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        action="store_true",
        help="skip the rows already in --output (ok or failed) and run the rest",
    )
    mode.add_argument(
        "--retry-failed",
        action="store_true",
        help="like --resume, and run the failed rows of --output again",
    )
    mode.add_argument(
        "--overwrite", action="store_true", help="empty --output first if it has results"
    )
    p.add_argument("--shard", metavar="K/N", help="run only shard K of N (1 <= K <= N), by key")
    p.add_argument("--include-input", action="store_true", help="add each row as 'input'")
    p.add_argument(
        "--include-response", action="store_true", help="add the whole answer as 'response'"
    )
    p.add_argument("--input-format", choices=FORMATS, help="input format (default: by name)")
    p.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        help="output format (default: by name; --engine ray: parquet, or jsonl)",
    )
    p.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="stderr progress: a bar on a terminal, plain lines otherwise (auto)",
    )
    p.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between plain progress lines (default 10)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress and no summary, only errors")
    _add_database_arguments(p)
    _add_openai_batch_arguments(p)
    _add_cost_arguments(p)
    add_schema_arguments(p)
    _add_ray_arguments(p)
    _add_spark_arguments(p)
    return p


def _add_database_arguments(p: argparse.ArgumentParser) -> None:
    db = p.add_argument_group(
        "databases (any SQLAlchemy URL: postgresql://user@host/db, sqlite:///file.db)",
        "--input URL with --query or --table; --output URL with --output-table. Passwords "
        'are never shown; ENV["NAME"] reads the URL, or a part of it, from the environment',
    )
    db.add_argument(
        "--query",
        metavar="SQL",
        help="rows: the result of this query on --input (parameters written :name)",
    )
    db.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a bound parameter of --query (repeatable; values are text, never pasted in)",
    )
    db.add_argument("--table", metavar="NAME", help="rows: the whole table NAME of --input")
    db.add_argument(
        "--output-table",
        metavar="NAME",
        help="results: the table NAME of --output (created when missing, key as primary key)",
    )


def _database_options(args: argparse.Namespace) -> dict[str, Any]:
    """The database options of ``args`` (query, table, params), checked."""
    from .sql_url import is_database_url

    query, table = getattr(args, "query", None), getattr(args, "table", None)
    output_table = getattr(args, "output_table", None)
    params: dict[str, str] = {}
    for item in getattr(args, "param", None) or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(
                f"--param {item!r}: write it NAME=VALUE, e.g. --param day=2026-12-01",
                field="param",
            )
        params[name.strip()] = value
    if params and query is None:
        raise ConfigurationError("--param binds the parameters of --query", field="param")
    if query is not None and table is not None:
        raise ConfigurationError("give --query or --table, not both", field="query")
    database_in = query is not None or table is not None
    if database_in and not is_database_url(args.input):
        raise ConfigurationError(
            "--query and --table read a database: --input must be its URL "
            "(e.g. postgresql://user@host/db or sqlite:///rows.db)",
            field="input",
        )
    if is_database_url(args.input) and not database_in:
        raise ConfigurationError(
            "--input is a database URL: say what to read with --query 'SELECT ...' or --table NAME",
            field="input",
        )
    if output_table and not is_database_url(args.output):
        raise ConfigurationError(
            "--output-table writes into a database: --output must be its URL", field="output"
        )
    if is_database_url(args.output) and not output_table:
        raise ConfigurationError(
            "--output is a database URL: name the results table with --output-table NAME "
            "(created when missing)",
            field="output_table",
        )
    options: dict[str, Any] = {}
    if database_in:
        options.update(query=query, table=table, params=params)
    if output_table:
        options["output_table"] = output_table
    return options


def _add_openai_batch_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "OpenAI batch files",
        "--input-format openai-batch (detected when the first line has custom_id and body): "
        "each line's body is sent as it is, custom_id is the key; --output-format "
        "openai-batch writes OpenAI's output lines",
    )
    group.add_argument(
        "--error-file",
        metavar="FILE",
        help="with --output-format openai-batch: failed requests go here (as OpenAI does), "
        "not inline (as vLLM does)",
    )


def _add_cost_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("the response cache, cost and a budget")
    group.add_argument(
        "--cache",
        metavar="FILE",
        help="a SQLite file of answers: a request answered before is not sent again "
        '(its line says "cached": true); several processes may share it',
    )
    group.add_argument(
        "--cache-mode",
        choices=CACHE_MODES,
        help="read-write (default), read-only (store nothing), refresh (ask again, store anew)",
    )
    prices = group.add_mutually_exclusive_group()
    prices.add_argument(
        "--price",
        metavar="PRICES",
        help="USD per million tokens: input=0.15,output=0.60[,cached_input=0.075]; each "
        "line gets its cost",
    )
    prices.add_argument(
        "--prices",
        metavar="FILE",
        help='JSON of model name to prices, e.g. {"gpt-4o-mini": {"input": 0.15, "output": 0.60}}',
    )
    group.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help=f"start no new row once this run spent this much (needs prices); exit "
        f"{EXIT_BUDGET_SPENT}, --resume runs the rest",
    )
    group.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help=f"start no new row once the endpoint reported this many tokens; exit "
        f"{EXIT_BUDGET_SPENT}",
    )


def _cost_options(args: argparse.Namespace) -> dict[str, Any]:
    """The cache, price and budget options of ``args`` (only those given)."""
    prices: Any = args.price
    if getattr(args, "prices", None):
        prices = read_json_file(args.prices, "prices")
    options = {
        "cache": args.cache,
        "cache_mode": args.cache_mode,
        "prices": prices,
        "max_cost": args.max_cost,
        "max_tokens": args.max_tokens,
    }
    return {name: value for name, value in options.items() if value is not None}


def _add_ray_arguments(p: argparse.ArgumentParser) -> None:
    ray = p.add_argument_group(
        "on a Ray cluster (pip install 'openai-compat[ray]')",
        "--engine ray: --input is files or a glob (local or object storage), --output a "
        "directory of part files, --concurrency per actor, --rate for the whole job",
    )
    ray.add_argument(
        "--engine",
        choices=tuple(ENGINES),
        default="local",
        help="where rows run (local)",
    )
    ray.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="auto, ray://host:10001, or host:6379 (default: RAY_ADDRESS, else a cluster "
        "started here on 127.0.0.1)",
    )
    ray.add_argument("--actors", type=int, default=2, metavar="N", help="UDF actors (default 2)")
    ray.add_argument(
        "--num-cpus",
        type=float,
        default=0.0,
        metavar="X",
        help="CPUs each actor reserves (default 0: it waits on the network, and a whole CPU "
        "stays for Ray Data's reading on every node, 1-CPU nodes too)",
    )
    ray.add_argument(
        "--batch-size", type=int, default=256, metavar="N", help="rows per batch (default 256)"
    )
    ray.add_argument(
        "--ray-resources",
        type=_resources,
        metavar="NAME=X[,NAME=X]",
        help="custom Ray resources each actor needs, so actors run only on the nodes that "
        "offer them (sender=1 on nodes of one sender each: one actor per node)",
    )


def _resources(text: str) -> dict[str, float]:
    """``--ray-resources``'s ``NAME=X[,NAME=X]`` as a mapping."""
    found: dict[str, float] = {}
    for item in text.split(","):
        name, sep, amount = item.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = math.nan
        if not sep or not name.strip() or not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is not NAME=X with X a number above 0 (e.g. sender=1)"
            )
        found[name.strip()] = value
    return found


def _add_spark_arguments(p: argparse.ArgumentParser) -> None:
    spark = p.add_argument_group(
        "on Spark (pip install 'openai-compat[spark]'; Java 17+)",
        "--engine spark: --input is files or a glob (any filesystem Spark reads), --output a "
        "directory of part files, --concurrency per task, --rate for the whole job (each "
        "task gets its share)",
    )
    spark.add_argument(
        "--spark-master",
        metavar="URL",
        help="local[4], spark://host:7077, yarn... (default: SPARK_MASTER, else local[*] "
        "on 127.0.0.1)",
    )
    spark.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="partitions (tasks) to cut the input into (default: one per task slot, more "
        "when a task would get over 100 x --concurrency rows)",
    )


def run_batch_command(args: argparse.Namespace, retry: RetryPolicy | None = None) -> int:
    """Run ``openai-compat batch`` with parsed ``args``; returns the exit code."""
    try:
        stdin_users = [
            name for name in ("config", "input", "mapping", "outputs") if getattr(args, name) == "-"
        ]
        if len(stdin_users) > 1:
            raise ConfigurationError(
                f"only one of --{', --'.join(stdin_users)} can be - (stdin)", field="arguments"
            )
        config = read_json_file(args.config, "config")
        mapping = read_json_file(args.mapping, "mapping") if args.mapping else None
        outputs = read_json_file(args.outputs, "outputs") if args.outputs else None
        mode = (
            "resume"
            if args.resume
            else "retry-failed"
            if args.retry_failed
            else "overwrite"
            if args.overwrite
            else "new"
        )
        progress = "off" if args.quiet else args.progress
        database = _database_options(args)
        cost_options = _cost_options(args)
        engine = ENGINES[getattr(args, "engine", "local")]
        engine.check(args, cost=cost_options, database=bool(database))
        if engine.runner is not None:
            summary = engine.runner_function()(config, args, mapping, outputs, retry)
        else:
            to_output: Any = arun_batch_to_file
            if database.get("output_table"):
                from ._to_table import arun_batch_to_table

                to_output = arun_batch_to_table
            summary = run_sync(
                to_output(
                    config,
                    args.input,
                    args.output,
                    **database,
                    mode=mode,
                    output_format=args.output_format,
                    input_format=args.input_format,
                    progress=progress,
                    progress_interval_s=args.progress_interval,
                    handle_signals=True,
                    mapping=mapping,
                    outputs=outputs,
                    key=args.key,
                    concurrency=args.concurrency,
                    rate=args.rate,
                    rows_per_request=args.rows_per_request,
                    token_rate=args.token_rate,
                    max_concurrency=args.max_concurrency,
                    shard=args.shard,
                    include_input=args.include_input,
                    include_response=args.include_response,
                    retry=retry,
                    error_file=args.error_file,
                    **cost_options,
                    **schema_options(args),
                )
            )
    except ConfigurationError as exc:
        print(f"openai-compat batch: {exc}", file=sys.stderr)
        return 2
    except DatabaseError as exc:
        print(f"openai-compat batch: {exc}", file=sys.stderr)
        return 5
    except EngineJobError as exc:  # Spark's own job failed: not a row
        print(f"openai-compat batch: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("openai-compat batch: interrupted; run again with --resume", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"openai-compat batch: {summary}", file=sys.stderr)
    if summary.budget_spent:
        return EXIT_BUDGET_SPENT
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0
