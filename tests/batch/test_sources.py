"""The one table of input formats: what a name, a directory or a glob is, for every engine.

Ray and Spark ask the same table (tests/ray, tests/spark run their command lines on it);
here the table itself, and the local command line's refusals.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from openai_compat.batch import openai_batch_format
from openai_compat.batch.sources import (
    FORMATS,
    INPUT_FORMATS,
    count_rows,
    describe_formats,
    detect_format,
    file_picker_accept,
    format_named,
    format_of_input,
    format_of_name,
    open_rows,
    probe_columns,
)
from openai_compat.cli import main
from openai_compat.errors import ConfigurationError
from openai_compat.testing import MockServer
from tests.conftest import make_config

TEMPLATE = '{"model": "mock-model", "messages": [{"role": "user", "content": "{{text}}"}]}'
JSON_REFUSAL = (
    "a .json file is read as one JSON document, but batch input is streamed; write one JSON "
    "object per line and name it .jsonl"
)
UNKNOWN = "cannot tell the format from the name; use .jsonl, .csv or .parquet"


def refusal(location: str) -> str:
    with pytest.raises(ConfigurationError) as refused:
        format_of_input(location)
    assert refused.value.field == "input"
    return refused.value.reason


# -- the table ----------------------------------------------------------------------------------


def test_every_suffix_belongs_to_one_format_and_names_it() -> None:
    assert FORMATS == ("jsonl", "csv", "parquet", openai_batch_format.FORMAT)
    suffixes = [s for f in INPUT_FORMATS for s in f.suffixes]
    assert len(suffixes) == len(set(suffixes))
    for entry in describe_formats():
        for suffix in entry["suffixes"]:
            assert detect_format(f"dir/rows{suffix}") == entry["name"]
            assert detect_format(f"dir/ROWS{suffix.upper()}") == entry["name"]


def test_the_description_the_app_serves_is_json_and_offers_no_json_file() -> None:
    described = describe_formats()
    assert json.loads(json.dumps(described)) == described
    assert [entry["name"] for entry in described] == list(FORMATS)
    csv = next(entry for entry in described if entry["name"] == "csv")
    assert csv["suffixes"] == [".csv", ".csv.gz"] and csv["stdin"] is True
    parquet = next(entry for entry in described if entry["name"] == "parquet")
    assert parquet["suffixes"] == [".parquet", ".pq"] and parquet["stdin"] is False
    batch = next(entry for entry in described if entry["name"] == "openai-batch")
    assert batch["suffixes"] == [] and batch["found_in"] == "jsonl"
    accept = file_picker_accept().split(",")
    assert ".json" not in accept and ".gz" in accept
    # Each suffix a file may have is offered by its last part (what a browser matches).
    for entry in described:
        for suffix in entry["suffixes"]:
            assert "." + suffix.rsplit(".", 1)[1] in accept


def test_input_format_words_and_their_aliases() -> None:
    assert format_named("NDJSON").name == "jsonl"
    assert format_named("jsonlines").name == "jsonl"
    assert detect_format("rows.txt", "CSV") == "csv"
    with pytest.raises(ConfigurationError) as refused:
        format_named("json")  # refused by name, not an --input-format
    assert refused.value.reason == (
        "unknown input format 'json'; use one of jsonl, csv, parquet, openai-batch"
    )


def test_a_name_is_judged_the_same_way_with_and_without_input_format() -> None:
    for name, reason in (("in.json", JSON_REFUSAL), ("in.json.gz", JSON_REFUSAL)):
        with pytest.raises(ConfigurationError) as local:
            format_of_name(name)
        assert local.value.reason == f"{name}: {reason} (or pass --input-format jsonl)"
        with pytest.raises(ConfigurationError) as cluster:
            format_of_name(name, input_format_option=False)
        assert cluster.value.reason == f"{name}: {reason}"
    for name in ("in.txt", "in", "in.gz"):
        with pytest.raises(ConfigurationError) as local:
            format_of_name(name)
        assert local.value.reason == f"{name}: {UNKNOWN}, or pass --input-format"
        with pytest.raises(ConfigurationError) as cluster:
            format_of_name(name, input_format_option=False)
        assert cluster.value.reason == f"{name}: {UNKNOWN}"


# -- directories, globs, object storage -----------------------------------------------------------


def test_a_directory_or_glob_is_judged_by_its_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "year=2024").mkdir(parents=True)
    (data / "a.ndjson").write_text("{}\n")
    (data / "year=2024" / "b.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    # What Ray and Spark leave out of a directory they read.
    (data / "_SUCCESS").write_text("")
    (data / ".a.ndjson.crc").write_text("")
    (data / "_temporary").mkdir()
    (data / "_temporary" / "x.csv").write_text("")
    assert format_of_input(str(data)).name == "jsonl"
    assert format_of_input(f"{data}/*").name == "jsonl"  # _SUCCESS is not matched in
    assert format_of_input(f"{data}/*/*.gz").name == "jsonl"
    (data / "c.csv").write_text("id\n1\n")
    assert refusal(str(data)) == (
        f"{data}: holds files of more than one format ({data}/a.ndjson is jsonl, "
        f"{data}/c.csv is csv); give a glob that matches the files of one, such as {data}/*.jsonl"
    )
    assert format_of_input(f"{data}/*.csv").name == "csv"
    (data / "notes.txt").write_text("")
    assert refusal(str(data)) == f"{data}/notes.txt: {UNKNOWN}"
    (data / "notes.txt").unlink()
    (data / "c.csv").rename(data / "c.json")
    assert refusal(str(data)) == f"{data}/c.json: {JSON_REFUSAL}"
    (tmp_path / "empty").mkdir()
    assert refusal(str(tmp_path / "empty")) == f"{tmp_path / 'empty'}: holds no files to read"


def test_a_glob_that_matches_nothing_or_a_missing_file_is_judged_by_its_name(
    tmp_path: Path,
) -> None:
    assert format_of_input(f"{tmp_path}/none/*.parquet").name == "parquet"
    assert format_of_input(f"{tmp_path}/missing.csv.gz").name == "csv"
    assert refusal(f"{tmp_path}/none/*") == f"{tmp_path}/none/*: {UNKNOWN}"


def test_object_storage_is_judged_by_name_and_a_directory_there_needs_a_glob() -> None:
    assert format_of_input("s3://bucket/in/part-1.parquet").name == "parquet"
    assert format_of_input("gs://bucket/in/*.ndjson").name == "jsonl"
    hint = "; for a directory, give a glob of its files, such as s3://bucket/dir/*.parquet"
    for location in ("s3://bucket/dir/", "s3://bucket/dir", "s3://bucket/dir/part-*"):
        assert refusal(location) == f"{location}: {UNKNOWN}{hint}"
    assert refusal("s3://bucket/in.json") == f"s3://bucket/in.json: {JSON_REFUSAL}"


# -- columns and rows ----------------------------------------------------------------------------


def test_the_columns_at_the_start_of_a_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1], "text": ["a"]}), tmp_path / "in.pq")
    assert probe_columns(str(tmp_path / "in.pq")) == ["id", "text"]
    (tmp_path / "in.csv.gz").write_bytes(gzip.compress(b"\xef\xbb\xbfid,text\n1,a\n"))
    assert probe_columns(str(tmp_path / "in.csv.gz")) == ["id", "text"]
    (tmp_path / "in.ndjson").write_text('\n{"id": 1}\nnot json\n{"text": "b", "id": 2}\n')
    assert probe_columns(str(tmp_path / "in.ndjson")) == ["id", "text"]
    (tmp_path / "empty.csv").write_text("")
    assert probe_columns(str(tmp_path / "empty.csv")) == []
    (tmp_path / "twice.csv").write_text("id,id\n1,2\n")
    with pytest.raises(ConfigurationError, match="repeated column names"):
        probe_columns(str(tmp_path / "twice.csv"))
    with pytest.raises(ConfigurationError, match="stdin"):
        probe_columns("-")


def test_only_the_first_block_of_json_lines_is_read_for_its_columns(tmp_path: Path) -> None:
    first = json.dumps({"id": 0, "text": "x" * 1000}) + "\n"
    path = tmp_path / "in.jsonl"
    path.write_text(first * 2000 + '{"late": 1}\n')
    assert probe_columns(str(path)) == ["id", "text"]
    assert count_rows(open_rows(path)) == 2001


def test_a_damaged_gzip_file_has_no_columns(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl.gz").write_bytes(gzip.compress(b'{"id": 1}\n')[:12])
    with pytest.raises(ConfigurationError, match="cannot read"):
        probe_columns(str(tmp_path / "in.jsonl.gz"))


# -- the local command line ----------------------------------------------------------------------


def _run(tmp_path: Path, url: str, source: Path, *extra: str) -> int:
    (tmp_path / "conn.json").write_text(json.dumps(make_config(url, request_format=TEMPLATE)))
    args = ["batch", "--config", str(tmp_path / "conn.json"), "--input", str(source)]
    return main([*args, "--output", str(tmp_path / "out.jsonl"), "--rate", "off", *extra])


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("rows.json", f"{JSON_REFUSAL} (or pass --input-format jsonl)"),
        ("rows.txt", f"{UNKNOWN}, or pass --input-format"),
    ],
)
def test_the_local_command_line_refuses_a_json_file_and_an_unknown_suffix(
    tmp_path: Path, capsys: Any, name: str, reason: str
) -> None:
    source = tmp_path / name
    source.write_text('{"id": 1, "text": "a"}\n')
    with MockServer() as srv:
        assert _run(tmp_path, srv.url, source, "--key", "id") == 2
        assert capsys.readouterr().err == f"openai-compat batch: input: {source}: {reason}\n"
        # The way out the message names: the file read as JSON Lines.
        assert _run(tmp_path, srv.url, source, "--key", "id", "--input-format", "jsonl") == 0
        assert len(srv.requests) == 1
    [line] = (tmp_path / "out.jsonl").read_text().splitlines()
    assert json.loads(line)["error"] is None
