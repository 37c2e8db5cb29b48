"""The sink protocol: any output a run can go to is prepared, written and closed the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from openai_compat.batch.engine import BatchRun
from openai_compat.batch.results import BatchResult
from openai_compat.batch.run import Notices, drive
from openai_compat.batch.sinks import Prepared, ResultSink
from openai_compat.testing import MockServer
from tests.conftest import NO_RETRY, make_config


class MemorySink:
    """A sink holding results in a list; an earlier run left keys 0 and 2."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.results: list[BatchResult] = []
        self.closed = False
        self.mode: str | None = None
        self._fail_at = fail_at

    def prepare(self, mode: str) -> Prepared:
        self.mode = mode
        return Prepared(done={"0", "2"}, removed_failed=1)

    async def write(self, results: Sequence[BatchResult]) -> None:
        if self._fail_at is not None and len(self.results) >= self._fail_at:
            raise OSError("the disk is full")
        self.results.extend(results)

    async def aclose(self) -> None:
        self.closed = True


def _rows() -> list[dict[str, str]]:
    return [{"q": f"question {n}"} for n in range(5)]


def test_any_sink_is_driven_with_the_keys_it_holds_left_out(server: MockServer) -> None:
    sink = MemorySink()
    notes: list[str] = []
    notices = Notices()
    run = BatchRun(make_config(server.url), _rows(), on_notice=notices, retry=NO_RETRY)
    checked: ResultSink = sink  # the protocol is structural: a plain class fits it
    summary = asyncio.run(
        drive(
            run,
            checked,
            {"mode": "resume"},
            notices,
            shown="memory",
            on_result=lambda r: notes.append(str(r.key)),
        )
    )
    assert sink.mode == "resume" and sink.closed
    assert sorted(r.key for r in sink.results) == [1, 3, 4]
    assert sorted(notes) == ["1", "3", "4"]  # each reported once it was written
    assert (summary.ok, summary.skipped) == (3, 2)


def test_a_failing_sink_is_still_closed_and_the_failure_is_raised(server: MockServer) -> None:
    sink = MemorySink(fail_at=0)
    run = BatchRun(make_config(server.url), _rows(), retry=NO_RETRY)
    with pytest.raises(OSError, match="the disk is full"):
        asyncio.run(drive(run, sink, {}, Notices(), shown="memory"))
    assert sink.closed and sink.results == []


# -- the part directories of the cluster engines --------------------------------------------
def test_a_part_directory_is_made_ready_per_mode_for_every_cluster_engine(
    tmp_path: Path,
) -> None:
    from openai_compat.batch.sinks.parts import PartLayout, prepare_parts
    from openai_compat.errors import ConfigurationError

    layout = PartLayout(
        "Spark",
        {"parquet": "part-*.parquet", "jsonl": "part-*.txt"},
        unfinished=("_temporary", ".part-*.tmp"),
    )
    out = tmp_path / "out"
    assert prepare_parts(out, "jsonl", "new", layout) == [] and out.is_dir()
    part = out / "part-0001.txt"
    part.write_text('{"key": "a"}\n')
    (out / "_temporary" / "0").mkdir(parents=True)
    (out / ".part-9.tmp").write_text("torn")
    with pytest.raises(ConfigurationError, match="already holds results: --resume"):
        prepare_parts(out, "jsonl", "new", layout)
    assert prepare_parts(out, "jsonl", "resume", layout) == [part]
    # What a killed run left unfinished is gone; its rows run again.
    assert not (out / "_temporary").exists() and not (out / ".part-9.tmp").exists()
    with pytest.raises(ConfigurationError, match="holds jsonl results: use the same"):
        prepare_parts(out, "parquet", "resume", layout)
    assert prepare_parts(out, "jsonl", "overwrite", layout) == [] and not part.exists()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigurationError) as caught:
        prepare_parts(a_file, "jsonl", "new", layout)
    assert caught.value.field == "output"
    assert "is a file: a Spark run writes a directory of part files" in caught.value.reason
    # Left to the engine's writer: nothing made here, nothing held.
    engines_own = PartLayout("Spark", {"jsonl": "part-*.txt"}, create=False)
    assert prepare_parts(tmp_path / "later", "jsonl", "new", engines_own) == []
    assert not (tmp_path / "later").exists()
    with pytest.raises(ConfigurationError, match="cannot create /proc/x/y"):
        prepare_parts("/proc/x/y", "jsonl", "new", layout)
