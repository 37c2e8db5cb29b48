"""Prices, the cost of each row, and a budget that stops the run (exit 3, --resume goes on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openai_compat import ConfigurationError, run_batch_sync
from openai_compat.batch.cost import Price, Prices
from openai_compat.testing import MockServer, chat_completion, json_reply
from tests.batch.test_batch_cli import batch_args, run_cli, write_inputs
from tests.conftest import make_config

TEMPLATE_FORMAT = json.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
)
MODEL_FORMAT = json.dumps({"model": "{{model}}", "messages": [{"role": "user", "content": "hi"}]})


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": " ".join(["word"] * (i + 1))} for i in range(n)]


def expected(usage: dict[str, Any], input_rate: float, output_rate: float) -> float:
    return (usage["prompt_tokens"] * input_rate + usage["completion_tokens"] * output_rate) / 1e6


def test_each_line_gets_its_cost_and_the_summary_the_total(
    server: MockServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    config = make_config(server.url, request_format=TEMPLATE_FORMAT)
    summary = run_batch_sync(config, rows(5), out, key="id", prices="input=0.15,output=0.60")
    lines = read_lines(out)
    for line in lines:
        assert line["cost"] == pytest.approx(expected(line["usage"], 0.15, 0.60))
    assert len({line["usage"]["completion_tokens"] for line in lines}) == 5  # differing costs
    assert summary.cost == pytest.approx(sum(line["cost"] for line in lines))
    assert f"${summary.cost:.4f}" in str(summary)


def test_cached_input_tokens_have_their_own_price(server: MockServer, tmp_path: Path) -> None:
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 300,
        "total_tokens": 2300,
        "prompt_tokens_details": {"cached_tokens": 1500},
    }
    server.enqueue(json_reply(chat_completion("ok", usage=usage)))
    out = tmp_path / "out.jsonl"
    run_batch_sync(
        make_config(server.url), [{"x": 1}], out, prices="input=1,output=4,cached_input=0.5"
    )
    (line,) = read_lines(out)
    assert line["cost"] == pytest.approx((500 * 1 + 1500 * 0.5 + 300 * 4) / 1e6)


def test_prices_per_model_from_a_file(server: MockServer, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"model-a": {"input": 1, "output": 2}, "model-b": "input=10,output=20"})
    )
    data = [{"model": "model-a"}, {"model": "model-b-2024-07-18"}, {"model": "model-z"}]
    config = tmp_path / "conn.json"
    config.write_text(json.dumps(make_config(server.url, request_format=MODEL_FORMAT)))
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in data))
    out = tmp_path / "out.jsonl"
    done = run_cli(batch_args(config, source, out, "--key", "model", "--prices", str(prices)))
    assert done.returncode == 0, done.stderr
    by_model = {line["key"]: line for line in read_lines(out)}
    a, b = by_model["model-a"], by_model["model-b-2024-07-18"]
    assert a["cost"] == pytest.approx(expected(a["usage"], 1, 2))
    assert b["cost"] == pytest.approx(expected(b["usage"], 10, 20))  # by the longest prefix
    assert by_model["model-z"]["cost"] is None
    assert "no cost for answers of model 'model-z'" in done.stderr
    total = a["cost"] + b["cost"]
    assert f"${total:.4f}" in done.stderr


def test_a_token_budget_stops_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    with MockServer() as server:
        config, source = write_inputs(tmp_path, server, 40, "?latency_ms=5")
        out = tmp_path / "out.jsonl"
        # Each answer reports 10 prompt + 4 completion tokens ("You said: row N").
        args = batch_args(config, source, out, "--key", "id", "--concurrency", "2")
        done = run_cli([*args, "--max-tokens", "100"])
        assert done.returncode == 3, done.stderr
        assert "--max-tokens budget of 100" in done.stderr
        lines = read_lines(out)
        spent = sum(line["usage"]["total_tokens"] for line in lines)
        # It stopped once the budget was spent: the rows in flight (at most 2) finished.
        assert 100 <= spent <= 100 + 3 * 14
        assert 8 <= len(lines) < 40
        assert len(server.requests) == len(lines)  # every row started was written
        resumed = run_cli([*args, "--resume"])
        assert resumed.returncode == 0, resumed.stderr
        keys = [line["key"] for line in read_lines(out)]
        assert sorted(keys) == sorted(f"t{i}" for i in range(40))  # each exactly once
        assert len(server.requests) == 40


def test_a_cost_budget_counts_only_what_the_endpoint_reported(tmp_path: Path) -> None:
    with MockServer() as server:
        config, source = write_inputs(tmp_path, server, 30, "?latency_ms=5")
        cache = tmp_path / "answers.sqlite"
        out = tmp_path / "out.jsonl"
        price = ("--price", "input=1000,output=1000")  # a row of 14 tokens costs $0.014
        budget = ("--max-cost", "0.05", "--cache", str(cache), "--key", "id")
        args = batch_args(config, source, out, *price, *budget, "--concurrency", "1")
        done = run_cli(args)
        assert done.returncode == 3, done.stderr
        lines = read_lines(out)
        assert len(lines) == 4  # 3 rows cost $0.042, the 4th reaches $0.056
        assert sum(line["cost"] for line in lines) == pytest.approx(0.056)
        # A new run over the same rows: the 4 cached rows cost nothing, 4 more are paid for.
        again = tmp_path / "again.jsonl"
        done = run_cli(batch_args(config, source, again, *price, *budget, "--concurrency", "1"))
        assert done.returncode == 3, done.stderr
        second = read_lines(again)
        assert sum(line["cached"] for line in second) == 4
        assert sum(line["cost"] for line in second if not line["cached"]) == pytest.approx(0.056)
        assert len(second) == 8


def test_progress_lines_show_the_cost(tmp_path: Path) -> None:
    with MockServer() as server:
        config, source = write_inputs(tmp_path, server, 30, "?latency_ms=20")
        args = batch_args(
            config,
            source,
            tmp_path / "out.jsonl",
            "--price",
            "input=1,output=1",
            "--progress",
            "lines",
            "--progress-interval",
            "0.05",
            "--concurrency",
            "2",
        )
        done = run_cli(args)
        assert done.returncode == 0, done.stderr
        assert "cost=$" in done.stderr


def test_bad_prices_and_budgets_are_explained(server: MockServer, tmp_path: Path) -> None:
    config = make_config(server.url)
    out = tmp_path / "out.jsonl"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"prices": "input=0.15"}, "no output price"),
        ({"prices": "input=cheap,output=1"}, "input must be a number"),
        ({"prices": "input=1,output=2,extra=3"}, "unknown price extra"),
        ({"prices": "input=-1,output=2"}, "must be 0 or more"),
        ({"max_cost": 5.0}, "a cost budget needs prices"),
        ({"prices": "input=1,output=1", "max_cost": 0}, "above 0"),
        ({"max_tokens": 0}, "1 or more"),
        ({"prices": {"m": [1, 2]}}, "must be an object"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigurationError, match=message):
            run_batch_sync(config, [{"x": 1}], out, **options)
    assert server.requests == []


def test_the_price_of_a_model_is_found_by_name_then_prefix() -> None:
    prices = Prices(Price(9, 9), {"gpt-4o": Price(2, 8), "gpt-4o-mini": Price(0.15, 0.6)})
    assert prices.price_of("gpt-4o-mini-2024-07-18") == Price(0.15, 0.6)
    assert prices.price_of("gpt-4o-2024-08-06") == Price(2, 8)
    assert prices.price_of(None, "gpt-4o") == Price(2, 8)
    assert prices.price_of("llama") == Price(9, 9)
    assert Price(1, 1).cost({"object": "no counts"}) is None


@pytest.mark.parametrize("stream_options", [None, {"include_usage": True}, {}])
def test_the_budget_counts_the_usage_a_stream_reports(
    server: MockServer, tmp_path: Path, stream_options: dict[str, Any] | None
) -> None:
    # The scripted server reports usage in a stream only when asked for it, as OpenAI does;
    # a run asks for it itself, unless the request format has stream_options of its own.
    body: dict[str, Any] = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "{{text}}"}],
    }
    if stream_options is not None:
        body["stream_options"] = stream_options
    config = tmp_path / "conn.json"
    config.write_text(
        json.dumps(make_config(server.url, is_stream=True, request_format=json.dumps(body)))
    )
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(12)))
    out = tmp_path / "out.jsonl"
    args = batch_args(config, source, out, "--max-tokens", "30", "--concurrency", "1")
    done = run_cli(args)
    lines = read_lines(out)
    sent = [request.json.get("stream_options") for request in server.requests]
    if stream_options != {}:
        assert sent == [{"include_usage": True}] * 3
        assert done.returncode == 3, done.stderr
        assert len(lines) == 3  # 14 tokens a row: the third passes 30
        assert all(line["usage"]["total_tokens"] == 14 for line in lines)
    else:
        assert sent == [{}] * 12  # the user's own stream_options are sent as given
        assert done.returncode == 0, done.stderr
        assert len(lines) == 12
        assert "reported no token usage" in done.stderr
        assert "stream_options.include_usage" in done.stderr


def test_the_cli_explains_bad_cache_price_and_budget_arguments(
    server: MockServer, tmp_path: Path
) -> None:
    config, source = write_inputs(tmp_path, server, 3)
    cases = [
        (("--price", "cheap"), "cannot read 'cheap'"),
        (("--max-cost", "1"), "a cost budget needs prices"),
        (("--max-tokens", "-5"), "1 or more"),
        (("--cache", str(tmp_path)), "is a directory"),
        (("--cache", str(tmp_path / "no" / "such" / "c.sqlite")), "does not exist"),
        (("--cache-mode", "refresh"), "needs a cache file"),
        (("--prices", str(tmp_path / "missing.json")), "missing.json"),
    ]
    for extra, message in cases:
        done = run_cli(batch_args(config, source, tmp_path / "out.jsonl", *extra))
        assert done.returncode == 2, (extra, done.stderr)
        assert message in done.stderr, (extra, done.stderr)
        assert "Traceback" not in done.stderr
    assert server.requests == []
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").stat().st_size == 0


def test_money_is_counted_exactly_ten_dimes_make_a_dollar(tmp_path: Path) -> None:
    from openai_compat.batch.budget import Budget

    budget = Budget(max_cost=1.0)
    for _ in range(9):
        budget.add(0.1, None)
    assert budget.spent is None
    budget.add(0.1, None)
    assert budget.spent == "spent $1.0000 of the --max-cost budget of $1.00"
    with MockServer() as server:
        config, source = write_inputs(tmp_path, server, 20, "?latency_ms=1")
        out = tmp_path / "out.jsonl"
        # Each answer reports 4 completion tokens: $0.10 a row.
        price = ("--price", "input=0,output=25000", "--max-cost", "1")
        done = run_cli(batch_args(config, source, out, *price, "--concurrency", "1"))
        assert done.returncode == 3, done.stderr
        lines = read_lines(out)
        assert [line["cost"] for line in lines] == [0.1] * 10  # the eleventh never starts
        assert len(server.requests) == 10
        assert "spent $1.0000 of the --max-cost budget of $1.00" in done.stderr


def test_prices_are_bounded_and_say_the_bound(server: MockServer, tmp_path: Path) -> None:
    for prices in (
        "input=1e308,output=1",
        {"input": 1, "output": 1e308},
        {"m": "input=2e6,output=1"},
    ):
        with pytest.raises(ConfigurationError, match="at most 1000000 USD per million tokens"):
            run_batch_sync(make_config(server.url), [{"x": 1}], tmp_path / "o.jsonl", prices=prices)
    assert Price.parse("input=1000000,output=0").input == 1_000_000
    # A count no endpoint could report costs nothing rather than infinity.
    huge = {"prompt_tokens": 10**400, "completion_tokens": 1}
    assert Price(1_000_000, 1_000_000).cost(huge) is None
    assert server.requests == []
