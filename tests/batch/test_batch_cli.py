"""``openai-compat batch`` as a real process: exit codes, stdin, progress, Ctrl-C, kill -9.

The crash test kills a running batch with SIGKILL at five random moments of a 2,000-row
run (the scripted server answers with some latency, so every kill lands mid-run), resumes
after each, and checks that every input row is in the output exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openai_compat.testing import MockServer, json_reply
from tests.conftest import CANARY, make_config

TEMPLATE_FORMAT = json.dumps(
    {"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}
)


def write_inputs(
    tmp_path: Path, server: MockServer, n: int, query: str = "", **extra: Any
) -> tuple[Path, Path]:
    config = tmp_path / "conn.json"
    config.write_text(
        json.dumps(make_config(server.url + query, request_format=TEMPLATE_FORMAT, **extra))
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"id": f"t{i}", "text": f"row {i}"}) + "\n" for i in range(n))
    )
    return config, rows


def batch_args(config: Path, rows: Path | str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "openai_compat",
        "batch",
        "--config",
        str(config),
        "--input",
        str(rows),
        "--output",
        str(out),
        "--rate",
        "off",
        *extra,
    ]


def run_cli(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)
    assert CANARY not in result.stdout + result.stderr
    return result


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Popen that never outlives the test, whatever fails."""
    started: list[subprocess.Popen[str]] = []

    def start(args: list[str], **kw: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(args, text=True, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The same command in this process (for runs that need no real process)."""
    from openai_compat.cli import main

    assert args[:4] == [sys.executable, "-m", "openai_compat", "batch"]
    code = main(args[3:])
    err = capsys.readouterr().err
    assert CANARY not in err
    return code, err


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for_progress(proc: subprocess.Popen[str], out: Path, above: int) -> None:
    deadline = time.monotonic() + 60
    while count_lines(out) <= above:
        assert proc.poll() is None, (
            f"the batch ended early: {proc.stderr.read() if proc.stderr else ''}"
        )
        assert time.monotonic() < deadline, "the batch wrote nothing"
        time.sleep(0.01)


# -- exit codes and messages -------------------------------------------------------------------


def test_a_clean_run_exits_0_with_a_summary(server: MockServer, tmp_path: Path) -> None:
    config, rows = write_inputs(tmp_path, server, 20)
    out = tmp_path / "out.jsonl"
    result = run_cli(batch_args(config, rows, out, "--key", "id"))
    assert result.returncode == 0, result.stderr
    assert "20 ok, 0 failed, 0 skipped" in result.stderr
    assert sorted(line["key"] for line in lines_of(out)) == sorted(f"t{i}" for i in range(20))
    assert CANARY not in out.read_text()


def test_failed_rows_exit_1_and_retry_failed_fixes_them(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, rows = write_inputs(tmp_path, server, 5)
    out = tmp_path / "out.jsonl"
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps([{"name": "max_tokens", "value": "n", "type": "number"}]))
    rows.write_text(rows.read_text().replace('"id": "t3"', '"id": "t3", "n": "x"'))
    # Rows without n fail (missing column); t3's n cannot be cast: every row fails, no request.
    code, err = run_main(
        batch_args(config, rows, out, "--key", "id", "--mapping", str(mapping)), capsys
    )
    assert code == 1
    assert "0 ok, 5 failed" in err
    assert server.requests == []
    mapping.write_text("[]")
    code, err = run_main(
        batch_args(config, rows, out, "--key", "id", "--mapping", str(mapping), "--retry-failed"),
        capsys,
    )
    assert code == 0, err
    assert "running 5 failed rows again" in err
    assert sorted(line["key"] for line in lines_of(out)) == sorted(f"t{i}" for i in range(5))
    assert all(line["error"] is None for line in lines_of(out))


def test_a_failed_rows_error_body_is_its_response_when_responses_are_asked_for(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, rows = write_inputs(tmp_path, server, 2)
    denial = {
        "error": {"message": "The guardrail checks failed.", "type": "hooks_failed"},
        # A server may echo the request's key back: it is masked in the stored response too.
        "hook_results": {
            "before_request_hooks": [
                {
                    "id": "guard",
                    "checks": [{"id": "default.regexMatch", "verdict": False, "data": CANARY}],
                }
            ]
        },
    }
    server.enqueue(json_reply(denial, status=446), json_reply(denial, status=446))
    out = tmp_path / "out.jsonl"
    code, err = run_main(
        batch_args(config, rows, out, "--key", "id", "--include-response", "--concurrency", "1"),
        capsys,
    )
    assert code == 1, err
    lines = lines_of(out)
    assert len(lines) == 2
    for line in lines:
        assert line["error"]["status"] == 446
        assert "failed default.regexMatch (before_request_hooks guard)" in line["error"]["message"]
        assert line["response"]["hook_results"]["before_request_hooks"][0]["id"] == "guard"
        assert line["response"]["error"]["type"] == "hooks_failed"
    assert CANARY not in out.read_text()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--shard", "0/4"], "shards are numbered 1 to n"),
        (["--rate", "quickly"], "600/minute"),
        (["--concurrency", "0"], "concurrency: must be 1 to 10000"),
        (["--concurrency", "1000000"], "concurrency: must be 1 to 10000"),
        (["--outputs", "missing.json"], "cannot read missing.json"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    server: MockServer,
    tmp_path: Path,
    extra: list[str],
    words: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, rows = write_inputs(tmp_path, server, 3)
    monkeypatch.chdir(tmp_path)
    code, err = run_main(batch_args(config, rows, tmp_path / "out.jsonl", *extra), capsys)
    assert code == 2
    assert words in err
    assert "Traceback" not in err
    assert server.requests == []


def test_a_file_that_is_not_json_exits_2_naming_it(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, rows = write_inputs(tmp_path, server, 3)
    mapping = tmp_path / "mapping.json"
    mapping.write_text('[{"name": "messages.0.content",}]')
    code, err = run_main(
        batch_args(config, rows, tmp_path / "out.jsonl", "--mapping", str(mapping)), capsys
    )
    assert code == 2
    assert f"mapping file {mapping} is not valid JSON: " in err
    assert "line 1 column 32" in err
    assert "Traceback" not in err
    assert server.requests == []


def test_an_existing_output_needs_resume_or_overwrite(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, rows = write_inputs(tmp_path, server, 3)
    out = tmp_path / "out.jsonl"
    assert run_main(batch_args(config, rows, out), capsys)[0] == 0
    code, err = run_main(batch_args(config, rows, out), capsys)
    assert code == 2
    assert "--resume" in err and "--overwrite" in err
    code, err = run_main(batch_args(config, rows, out, "--resume"), capsys)
    assert code == 0 and "0 ok, 0 failed, 3 skipped" in err
    code, err = run_main(batch_args(config, rows, out, "--overwrite"), capsys)
    assert code == 0 and "3 ok, 0 failed, 0 skipped" in err
    assert len(lines_of(out)) == 3


def test_stdin_input_csv_output_and_plain_progress_lines(
    server: MockServer, tmp_path: Path
) -> None:
    config, rows = write_inputs(tmp_path, server, 60, "?latency_ms=20")
    out = tmp_path / "out.csv"
    result = run_cli(
        batch_args(
            config,
            "-",
            out,
            "--key",
            "id",
            "--concurrency",
            "2",
            "--progress-interval",
            "0.2",
        ),
        input=rows.read_text(),
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("batch: ")]
    assert progress, result.stderr
    assert "rows (ok" in progress[0] and "req/s" in progress[0] and "tok/s" in progress[0]
    text = out.read_text()
    assert text.startswith("key,output.choices.0.message.content,usage.prompt_tokens")
    assert text.count("\n") == 61


def test_progress_bar_on_request(server: MockServer, tmp_path: Path) -> None:
    config, rows = write_inputs(tmp_path, server, 30)
    result = run_cli(batch_args(config, rows, tmp_path / "o.jsonl", "--progress", "bar"))
    assert result.returncode == 0
    assert "30/30" in result.stderr and "req/s=" in result.stderr and "failed=0" in result.stderr


def test_quiet_prints_nothing(server: MockServer, tmp_path: Path) -> None:
    config, rows = write_inputs(tmp_path, server, 5)
    result = run_cli(batch_args(config, rows, tmp_path / "o.jsonl", "--quiet"))
    assert result.returncode == 0 and result.stderr == ""


def test_shards_from_the_command_line_cover_every_row_once(
    server: MockServer, tmp_path: Path
) -> None:
    config, rows = write_inputs(tmp_path, server, 200)
    keys: list[str] = []
    for k in (1, 2):
        out = tmp_path / f"part{k}.jsonl"
        result = run_cli(batch_args(config, rows, out, "--key", "id", "--shard", f"{k}/2"))
        assert result.returncode == 0, result.stderr
        assert "in other shards" in result.stderr
        keys += [line["key"] for line in lines_of(out)]
    assert sorted(keys) == sorted(f"t{i}" for i in range(200))


# -- interruptions -----------------------------------------------------------------------------


def test_ctrl_c_stops_cleanly_and_resume_finishes(
    server: MockServer, tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    config, rows = write_inputs(tmp_path, server, 200, "?latency_ms=40")
    out = tmp_path / "out.jsonl"
    args = batch_args(config, rows, out, "--key", "id", "--concurrency", "4")
    proc = spawn(args, stderr=subprocess.PIPE)
    wait_for_progress(proc, out, 10)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "stopping" in err and "--resume" in err
    data = out.read_bytes()
    assert data.endswith(b"\n"), "no half-written line"
    first = lines_of(out)
    assert 10 < len(first) < 200
    resumed = run_cli([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(first)} skipped" in resumed.stderr
    keys = [line["key"] for line in lines_of(out)]
    assert len(keys) == 200 and set(keys) == {f"t{i}" for i in range(200)}


def test_ctrl_c_with_a_stdin_that_never_ends_still_stops(
    server: MockServer, tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    config, rows = write_inputs(tmp_path, server, 30)
    out = tmp_path / "out.jsonl"
    proc = spawn(
        batch_args(config, "-", out, "--key", "id"), stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None
    proc.stdin.write(rows.read_text())
    proc.stdin.flush()  # and left open: the producer is still "writing"
    deadline = time.monotonic() + 60
    while count_lines(out) < 30:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    assert sorted(line["key"] for line in lines_of(out)) == sorted(f"t{i}" for i in range(30))


def test_sigkill_at_five_random_moments_then_resume_gives_each_row_exactly_once(
    server: MockServer, tmp_path: Path, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    config, rows = write_inputs(tmp_path, server, 2000, "?latency_ms=20")
    out = tmp_path / "out.jsonl"
    args = batch_args(config, rows, out, "--key", "id", "--concurrency", "8", "--quiet")
    seed = int(os.environ.get("BATCH_CRASH_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    for kill in range(5):
        proc = spawn(args + (["--resume"] if kill else []))
        wait_for_progress(proc, out, count_lines(out))
        time.sleep(rng.uniform(0.0, 0.3))
        assert proc.poll() is None, f"kill {kill} came after the run ended (seed {seed})"
        proc.kill()
        proc.wait(timeout=10)
    written_before_final = count_lines(out)
    assert written_before_final < 2000, f"seed {seed}"
    final = run_cli([*args, "--resume"])
    assert final.returncode == 0, final.stderr
    lines = lines_of(out)  # every line is whole JSON: any torn line was repaired
    keys = [line["key"] for line in lines]
    assert len(keys) == len(set(keys)) == 2000, f"duplicates or gaps (seed {seed})"
    assert set(keys) == {f"t{i}" for i in range(2000)}
    assert all(line["error"] is None for line in lines)
    for line in lines:
        number = line["key"][1:]
        assert line["output"] == {"choices.0.message.content": f"You said: row {number}"}


# -- Parquet output --------------------------------------------------------------------------


def parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("results.parquet", []),
        ("results.PARQUET", []),
        ("results.pq", []),
        ("results.out", ["--output-format", "parquet"]),
    ],
)
def test_a_parquet_output_is_parquet(
    server: MockServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    extra: list[str],
) -> None:
    config, rows = write_inputs(tmp_path, server, 4)
    out = tmp_path / name
    code, err = run_main(
        batch_args(config, rows, out, "--key", "id", "--include-response", *extra), capsys
    )
    assert code == 0, err
    assert out.read_bytes()[:4] == b"PAR1"
    written = parquet_rows(out)
    assert sorted(row["key"] for row in written) == [f"t{i}" for i in range(4)]
    for row in written:
        assert row["choices.0.message.content"] == f"You said: row {row['key'][1:]}"
        assert row["error_message"] is None and row["attempts"] == 1
        assert row["total_tokens"] > 0
        assert json.loads(row["http_response"])["object"] == "chat.completion"
    assert CANARY not in out.read_bytes().decode("latin-1")


def test_a_parquet_output_resumes_and_retries_failed_rows(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, rows = write_inputs(tmp_path, server, 3)
    rows.write_text(
        rows.read_text()
        .replace('"text"', '"n": 5, "text"')
        .replace('"n": 5, "text": "row 1"', '"n": "x", "text": "row 1"')
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps([{"name": "max_tokens", "value": "n", "type": "number"}]))
    out = tmp_path / "results.parquet"
    args = batch_args(config, rows, out, "--key", "id", "--mapping", str(mapping))
    code, err = run_main(args, capsys)
    assert code == 1, err  # t1's n cannot be cast: failed, not sent
    assert len(server.requests) == 2
    assert {r["key"]: r["error_message"] is None for r in parquet_rows(out)} == {
        "t0": True,
        "t1": False,
        "t2": True,
    }
    code, err = run_main(args, capsys)
    assert code == 2 and "already has results" in err
    with rows.open("a") as more:
        more.write(json.dumps({"id": "t3", "n": 5, "text": "row 3"}) + "\n")
    code, err = run_main([*args, "--resume"], capsys)
    assert code == 0, err  # as for JSON Lines: the failed t1 is left as it is
    assert len(server.requests) == 3
    assert sorted(r["key"] for r in parquet_rows(out)) == ["t0", "t1", "t2", "t3"]
    rows.write_text(rows.read_text().replace('"n": "x"', '"n": 7'))
    code, err = run_main([*args, "--retry-failed"], capsys)
    assert code == 0, err
    assert len(server.requests) == 4
    written = parquet_rows(out)
    assert sorted(r["key"] for r in written) == ["t0", "t1", "t2", "t3"]
    assert all(r["error_message"] is None for r in written)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".results.parquet")]


@pytest.mark.parametrize(
    ("output", "extra", "words"),
    [
        ("-", ["--output-format", "parquet"], "Parquet cannot be written to stdout"),
        ("results.parquet", ["--error-file", "e.jsonl"], "--error-file goes with --output-format"),
    ],
)
def test_parquet_outputs_it_cannot_write_are_refused_before_sending(
    server: MockServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    output: str,
    extra: list[str],
    words: str,
) -> None:
    config, rows = write_inputs(tmp_path, server, 2)
    out = output if output == "-" else str(tmp_path / output)
    code, err = run_main(batch_args(config, rows, out, *extra), capsys)  # type: ignore[arg-type]
    assert code == 2, err
    assert words in err
    assert server.requests == []


def test_resuming_a_parquet_output_that_is_not_parquet_is_refused(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, rows = write_inputs(tmp_path, server, 2)
    out = tmp_path / "results.parquet"
    out.write_text('{"key": "t0"}\n')  # what an earlier version wrote under this name
    code, err = run_main(batch_args(config, rows, out, "--key", "id", "--resume"), capsys)
    assert code == 2, err
    assert "is not a Parquet file" in err and "--overwrite" in err
    assert server.requests == []
    assert out.read_text() == '{"key": "t0"}\n'


def test_a_parquet_output_without_pyarrow_names_the_extra(
    server: MockServer, tmp_path: Path
) -> None:
    config, rows = write_inputs(tmp_path, server, 2)
    out = tmp_path / "results.parquet"
    # The same command in an interpreter where pyarrow cannot be imported.
    program = (
        "import sys; sys.modules['pyarrow'] = None; from openai_compat.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    args = batch_args(config, rows, out, "--key", "id")
    result = run_cli([sys.executable, "-c", program, *args[3:]])
    assert result.returncode == 2, result.stderr
    assert "pip install 'openai-compat[parquet]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert server.requests == []
    assert not out.exists()


@pytest.mark.parametrize("engine", ["ray", "spark"])
def test_a_cluster_engine_refuses_an_output_named_for_a_format_it_cannot_write(
    server: MockServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str
) -> None:
    config, rows = write_inputs(tmp_path, server, 2)
    out = tmp_path / "results.csv"
    code, err = run_main(batch_args(config, rows, out, "--key", "id", "--engine", engine), capsys)
    assert code == 2, err
    assert f"--engine {engine} writes parquet or jsonl, not csv" in err
    assert server.requests == []
    assert not out.exists()
