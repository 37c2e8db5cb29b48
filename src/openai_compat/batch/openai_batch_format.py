"""OpenAI batch files, unchanged: the Batch API's (and vLLM ``run_batch``'s) lines in and out.

In: each line is ``{"custom_id", "method", "url", "body"}``; the body is the payload, sent as
it is to the connection's URL; the key is ``custom_id``. A line for another endpoint than
chat completions, or with another method than POST, is a failed row saying so.

Out: each result is OpenAI's output line ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}``. Failed requests go in the same file (as vLLM writes
them) or in an error file (as OpenAI does). Both files are the checkpoint: `prepare_output`
reads the keys written in either back for ``--resume`` and ``--retry-failed``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from ..apis import CHAT, Dialect
from ..errors import ConfigurationError
from ..mapping import PayloadBuilder, RowMappingError
from .checkpoint import Checkpoint, Record, json_line_records, rewrite_kept
from .keys import key_token
from .keyset import WrittenKeys
from .results import BatchResult
from .writers import FileSink, json_line

__all__ = [
    "FORMAT",
    "KEY",
    "BatchLinePayloads",
    "OpenAIBatchWriter",
    "batch_row_settings",
    "is_batch_input",
    "looks_like_batch_file",
    "output_line",
    "prepare_output",
]

FORMAT = "openai-batch"
KEY = "custom_id"


def looks_like_batch_file(stream: IO[bytes]) -> bool:
    """True when the first line of ``stream`` (closed here) has ``custom_id`` and ``body``."""
    try:
        for line in stream:
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except ValueError:
                return False
            return isinstance(first, dict) and KEY in first and "body" in first
        return False
    except (OSError, EOFError, ValueError):
        return False
    finally:
        stream.close()


def is_batch_input(rows: Any, input_format: str | None) -> bool:
    """True when a run's rows are the lines of an OpenAI batch file."""
    from .sources import RowSource

    if isinstance(rows, RowSource):
        return rows.format == FORMAT
    return input_format == FORMAT


def _is_path_of(url: str, dialect: Dialect) -> bool:
    path = url.split("?", 1)[0].rstrip("/")
    return path.endswith(dialect.path)


class BatchLinePayloads(PayloadBuilder):
    """The payload builder of batch lines: each line's ``body``, as it is.

    (The checks of `PayloadBuilder.build` apply: a body JSON cannot carry fails its row.)

    >>> BatchLinePayloads().build({"custom_id": "r1", "method": "POST",
    ...     "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}})
    {'model': 'm', 'messages': []}
    """

    def __init__(self, dialect: Dialect = CHAT) -> None:
        super().__init__({})
        self.columns = [KEY, "body"]
        # A line is checked against the API of the connection's URL, where it is sent.
        self.dialect = dialect

    def _build(self, row: Mapping[str, Any]) -> dict[str, Any]:
        name = repr(row.get(KEY))
        method = row.get("method", "POST")
        if not isinstance(method, str) or method.upper() != "POST":
            raise RowMappingError(
                f"batch line {name} has method {method!r}; {self.dialect.noun} are sent with POST"
            )
        url = row.get("url")
        api = self.dialect
        if url is not None and (not isinstance(url, str) or not _is_path_of(url, api)):
            raise RowMappingError(
                f"batch line {name} is for {url!r}, not a {api.label} path "
                f"(/v1{api.path}): this run sends {api.noun} to the connection's "
                "url only; run the lines of other endpoints elsewhere"
            )
        body = row.get("body")
        if not isinstance(body, dict):
            kind = "no body" if body is None else f"a body that is a JSON {type(body).__name__}"
            raise RowMappingError(
                f"batch line {name} has {kind}; the body must be the request object"
            )
        return body


def batch_row_settings(
    options: Mapping[str, Any], dialect: Dialect = CHAT
) -> tuple[str, BatchLinePayloads]:
    """The key column and the payload builder of a run of batch lines (options checked),
    whose lines are for ``dialect``'s API."""
    for name, flag in (("mapping", "--mapping"), ("payload_builder", "payload_builder")):
        if options.get(name) is not None:
            raise ConfigurationError(
                f"an OpenAI batch file's body is sent as it is: leave out {flag}", field=name
            )
    key = options.get("key")
    if key not in (None, KEY):
        raise ConfigurationError(
            f"the key of an OpenAI batch file is its {KEY}: leave out --key {key}", field="key"
        )
    return KEY, BatchLinePayloads(dialect)


# -- out --------------------------------------------------------------------------------------


def _error_code(result: BatchResult) -> str:
    status = (result.error or {}).get("status")
    if status is not None:
        return f"http_{status}"
    if result.has_response and result.response is not None:
        return "output_error"
    return "invalid_request" if result.attempts == 0 else "request_failed"


def output_line(result: BatchResult) -> dict[str, Any]:
    """OpenAI's output line of ``result`` (``error`` set for every failed request).

    >>> line = output_line(BatchResult(key="r1", index=0, response={"id": "c"}, request_id="q"))
    >>> line["custom_id"], line["response"], line["error"]
    ('r1', {'status_code': 200, 'request_id': 'q', 'body': {'id': 'c'}}, None)
    """
    body = result.response if result.has_response else None
    error = result.error
    response: dict[str, Any] | None = None
    if error is not None and error.get("status") is not None:
        # A refused request keeps the endpoint's own error body when there was one.
        if body is None:
            body = {"error": {"message": error.get("message"), "type": None, "code": None}}
        response = {"status_code": error["status"], "request_id": result.request_id, "body": body}
    elif body is not None:
        response = {"status_code": 200, "request_id": result.request_id, "body": body}
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": key_token(result.key),
        "response": response,
        "error": None
        if error is None
        else {"code": _error_code(result), "message": error.get("message")},
    }


class OpenAIBatchWriter:
    """Appends OpenAI output lines; failed ones to ``error_path`` when given."""

    def __init__(self, path: str, error_path: str | None = None) -> None:
        self._sink = FileSink(path)
        self._errors = FileSink(error_path) if error_path else None

    def write(self, result: BatchResult) -> None:
        """Append the line of one result (a failed one to the error file, if there is one)."""
        from .._strict_json import json_safe

        line = output_line(result)
        try:
            data = json_line(line)
        except (ValueError, TypeError, RecursionError):
            data = json_line(json_safe(line))
        sink = self._errors if result.error is not None and self._errors is not None else None
        (sink or self._sink).put(data)

    def close(self) -> None:
        """Close the files."""
        self._sink.close()
        if self._errors is not None:
            self._errors.close()


# -- the checkpoint ---------------------------------------------------------------------------


def _failed_line(data: Mapping[str, Any]) -> bool:
    if data.get("error") is not None:
        return True
    response = data.get("response")
    if not isinstance(response, Mapping):
        return True
    status = response.get("status_code")
    return not isinstance(status, int) or status >= 400


def _batch_line(data: Any) -> tuple[str, bool]:
    return key_token(data[KEY]), _failed_line(data)


def _records(path: str) -> Iterator[Record]:
    return json_line_records(
        path,
        _batch_line,
        f"an OpenAI batch output line (with {KEY} and response); resume only with the "
        "output of a batch run",
    )


class _TwoFileKeys:
    """The key at an offset of the output file, or past its end, of the error file."""

    def __init__(self, path: str, error_path: str | None, boundary: int) -> None:
        self.paths = (path, error_path)
        self.boundary = boundary
        self._files: dict[int, IO[bytes]] = {}

    def __call__(self, offset: int) -> str:
        which = 0 if offset < self.boundary else 1
        if which not in self._files:
            name = self.paths[which]
            assert name is not None
            self._files[which] = open(name, "rb")  # noqa: SIM115 (closed by close())
        f = self._files[which]
        f.seek(offset - (self.boundary if which else 0))
        return key_token(json.loads(f.readline())[KEY])

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


@dataclass(slots=True)
class BatchCheckpoint(Checkpoint):
    """A `Checkpoint` over the output file and the error file."""

    keys: _TwoFileKeys | None = field(default=None)

    def close(self) -> None:
        """Close the files the key checks read."""
        if self.keys is not None:
            self.keys.close()


def _size(path: str | None) -> int:
    return os.path.getsize(path) if path and os.path.exists(path) else 0


def _check_file(path: str, what: str) -> None:
    if os.path.isdir(path):
        raise ConfigurationError(f"{path} is a directory", field=what)


def _cut_torn(path: str) -> int:
    """Cut off a torn last line (a process killed mid-write); the bytes cut."""
    good_end = 0
    for record in _records(path):
        good_end = record.end
    size = os.path.getsize(path)
    if good_end < size:
        os.truncate(path, good_end)
    return size - good_end


def _drop_failed(path: str) -> int:
    """Rewrite ``path`` without its failed lines (atomically); how many there were."""
    failed = sum(record.failed for record in _records(path))
    if failed:
        kept = (record for record in _records(path) if not record.failed)
        rewrite_kept(path, kept, WrittenKeys(max_offset=os.path.getsize(path)))
    return failed


def prepare_output(path: str, mode: str, error_path: str | None = None) -> Checkpoint:
    """Get the output (and error) file ready for appending, per ``mode``, as
    `checkpoint.prepare_output` does for result lines."""
    files = [p for p in (path, error_path) if p]
    if path == "-" or error_path == "-":
        if mode in ("resume", "retry-failed"):
            raise ConfigurationError(
                "cannot resume from stdout; write to a file with --output FILE", field="output"
            )
        return Checkpoint()
    for name in files:
        _check_file(name, "output" if name == path else "error_file")
    if error_path and os.path.abspath(error_path) == os.path.abspath(path):
        raise ConfigurationError(
            "--error-file must be another file than --output (or left out: failed requests "
            "are then written inline)",
            field="error_file",
        )
    used = [name for name in files if _size(name) > 0]
    if not used:
        return Checkpoint()
    if mode == "new":
        raise ConfigurationError(
            f"{' and '.join(used)} already {'has' if len(used) == 1 else 'have'} results: pass "
            "--resume to finish that run, --retry-failed to also run its failed rows again, "
            "or --overwrite to start over",
            field="output",
        )
    if mode == "overwrite":
        for name in used:
            with open(name, "wb"):
                pass
        return Checkpoint()
    return _read_back(path, mode, error_path)


def _read_back(path: str, mode: str, error_path: str | None) -> Checkpoint:
    files = [name for name in (path, error_path) if name and os.path.exists(name)]
    torn = sum(_cut_torn(name) for name in files)
    removed = sum(_drop_failed(name) for name in files) if mode == "retry-failed" else 0
    # Offsets past the end of the output are in the error file: one key set for both.
    boundary = _size(path)
    reader = _TwoFileKeys(path, error_path, boundary)
    state = BatchCheckpoint(torn_bytes=torn, removed_failed=removed, keys=reader)
    state.done = WrittenKeys(reader, max_offset=boundary + _size(error_path))
    for name in files:
        base = 0 if name == path else boundary
        for record in _records(name):
            if record.failed:
                state.failed += 1
            else:
                state.ok += 1
            assert record.key is not None
            state.done.add(record.key, base + record.end - len(record.raw))
    state.done.freeze()
    return state
