"""Files and batches in the database; a batch's status read from the run it is.

A batch is stored with what OpenAI shows of it; its progress is its run's. Its status
follows the run (`BatchStore.refresh`, by whichever instance reads it first, in one
transaction with the batch's row locked): a run still going is ``in_progress`` (or
``cancelling`` once a cancel was asked), an ended run is finalized once, into the output
file (the lines that succeeded) and the error file (the lines that failed), and the batch is
``completed``, ``cancelled``, ``failed`` or, past its ``expires_at``, ``expired``: the run is
then cancelled, its stored lines kept, and every line it had not finished is written to the
error file as OpenAI writes it (``batch_expired``), so each ``custom_id`` is in exactly one
of the two files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from ...batch.keys import key_token, read_key, stored_key
from ...batch.writers import json_line
from ..runs.tables import ACTIVE_STATUSES, RunResultRow, RunRow
from .tables import BatchRow, FileRow

__all__ = ["FINAL_BATCH_STATUSES", "BatchStore", "keys_of", "new_id"]

_FILES = cast(Table, FileRow.__table__)
_BATCHES = cast(Table, BatchRow.__table__)
_RUNS = cast(Table, RunRow.__table__)
_RESULTS = cast(Table, RunResultRow.__table__)

FINAL_BATCH_STATUSES = ("completed", "failed", "cancelled", "expired")
_CHUNK = 2000


def new_id(prefix: str) -> str:
    """A new id as OpenAI spells them (``file-...``, ``batch_...``)."""
    return f"{prefix}{uuid.uuid4().hex}"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back: they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _expired_line(custom_id: str) -> str:
    line = {
        "id": new_id("batch_req_"),
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    }
    return json_line(line).decode("utf-8")[:-1]


class BatchStore:
    """The Files and Batches API's rows (synchronous; call from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- files -----------------------------------------------------------------------------
    def add_file(self, values: Mapping[str, Any]) -> Any:
        """Record a file; its row."""
        with self.engine.begin() as connection:
            connection.execute(insert(_FILES).values(**values))
            return connection.execute(select(_FILES).where(_FILES.c.id == values["id"])).one()

    def file(self, file_id: str) -> Any | None:
        """The file's row, or None."""
        with self.engine.connect() as connection:
            return connection.execute(select(_FILES).where(_FILES.c.id == file_id)).first()

    def files_page(
        self, *, purpose: str | None, limit: int, after: str | None, order: str
    ) -> tuple[list[Any], bool]:
        """Files by ``created_at`` (``order`` ``asc`` or ``desc``) after the file ``after``."""
        where = [] if purpose is None else [_FILES.c.purpose == purpose]
        return self._page(_FILES, where, limit, after, order)

    def delete_file(self, file_id: str) -> Any | None:
        """Delete a file's row; the row it had, or None."""
        with self.engine.begin() as connection:
            row = connection.execute(select(_FILES).where(_FILES.c.id == file_id)).first()
            if row is not None:
                connection.execute(delete(_FILES).where(_FILES.c.id == file_id))
        return row

    def result_lines(self, run_id: int, ok: bool) -> Iterator[list[str]]:
        """The stored lines of a run that succeeded (``ok``) or failed, a chunk at a time."""
        after = 0
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(_RESULTS.c.seq, _RESULTS.c.line)
                    .where(
                        _RESULTS.c.run_id == run_id,
                        _RESULTS.c.ok.is_(ok),
                        _RESULTS.c.seq > after,
                    )
                    .order_by(_RESULTS.c.seq)
                    .limit(_CHUNK)
                ).all()
            if rows:
                yield [row.line for row in rows]
                after = int(rows[-1].seq)
            if len(rows) < _CHUNK:
                return

    # -- batches ---------------------------------------------------------------------------
    def add_batch(self, values: Mapping[str, Any]) -> Any:
        """Record a batch; its row."""
        with self.engine.begin() as connection:
            connection.execute(insert(_BATCHES).values(**values))
            return connection.execute(select(_BATCHES).where(_BATCHES.c.id == values["id"])).one()

    def batch(self, batch_id: str) -> tuple[Any, Any] | None:
        """The batch's row and its run's (None when it has none), or None."""
        with self.engine.connect() as connection:
            return self._with_run(connection, batch_id)

    def _with_run(self, connection: Connection, batch_id: str) -> tuple[Any, Any] | None:
        row = connection.execute(select(_BATCHES).where(_BATCHES.c.id == batch_id)).first()
        if row is None:
            return None
        run = None
        if row.run_id is not None:
            run = connection.execute(select(_RUNS).where(_RUNS.c.id == row.run_id)).first()
        return row, run

    def batches_page(self, *, limit: int, after: str | None) -> tuple[list[Any], bool]:
        """Batches newest first, after the batch ``after``."""
        return self._page(_BATCHES, [], limit, after, "desc")

    def _page(
        self, table: Table, where: list[Any], limit: int, after: str | None, order: str
    ) -> tuple[list[Any], bool]:
        created, key = table.c.created_at, table.c.id
        with self.engine.connect() as connection:
            if after is not None:
                mark = connection.execute(select(created, key).where(key == after)).first()
                if mark is None:
                    return [], False
                if order == "desc":
                    where = [
                        *where,
                        or_(created < mark[0], and_(created == mark[0], key < mark[1])),
                    ]
                else:
                    where = [
                        *where,
                        or_(created > mark[0], and_(created == mark[0], key > mark[1])),
                    ]
            ordering = (created.desc(), key.desc()) if order == "desc" else (created, key)
            rows = connection.execute(
                select(table).where(*where).order_by(*ordering).limit(limit + 1)
            ).all()
        return list(rows[:limit]), len(rows) > limit

    def ask_cancel(self, batch_id: str) -> bool:
        """Mark a batch not finished as ``cancelling`` and cancel its run; False when the
        batch has ended already."""
        now = _now()
        with self.engine.begin() as connection:
            row = connection.execute(
                select(_BATCHES).where(_BATCHES.c.id == batch_id).with_for_update()
            ).first()
            if row is None or row.status in FINAL_BATCH_STATUSES:
                return False
            connection.execute(
                update(_BATCHES)
                .where(_BATCHES.c.id == batch_id)
                .values(status="cancelling", cancelling_at=row.cancelling_at or now)
            )
            if row.run_id is not None:
                connection.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id == row.run_id, _RUNS.c.status.in_(ACTIVE_STATUSES))
                    .values(status="cancelled", finished_at=now, updated_at=now, live={})
                )
        return True

    def refresh(
        self, batch_id: str, unfinished: Callable[[str], Iterable[str]]
    ) -> tuple[Any, Any] | None:
        """The batch and its run, the batch's status brought up to date with its run's
        (finalized when the run has ended, expired past its window). ``unfinished(input_file_id)``:
        the custom_ids of the batch's input file (read only to expire it)."""
        found = self.batch(batch_id)
        if found is None:
            return None
        row, run = found
        if row.status in FINAL_BATCH_STATUSES or run is None:
            return found
        now = _now()
        expires_at = _aware(row.expires_at)
        overdue = expires_at is not None and now >= expires_at
        if run.status in ACTIVE_STATUSES and not overdue:
            return found
        with self.engine.begin() as connection:
            row = connection.execute(
                select(_BATCHES).where(_BATCHES.c.id == batch_id).with_for_update()
            ).one()
            if row.status in FINAL_BATCH_STATUSES:
                return self._with_run(connection, batch_id)
            run = connection.execute(
                select(_RUNS).where(_RUNS.c.id == row.run_id).with_for_update()
            ).one()
            if run.status in ACTIVE_STATUSES:
                # Past its window: the run stops (its instance stops at its next write) and
                # the lines it has not finished are failed as expired.
                connection.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id == run.id)
                    .values(status="cancelled", finished_at=now, updated_at=now, live={})
                )
                self._expire_unfinished(connection, run.id, unfinished(row.input_file_id))
                status = "expired"
            elif run.status == "succeeded":
                status = "completed"
            elif run.status == "cancelled" and row.cancelling_at is not None:
                status = "cancelled"
            else:
                status = "failed"
            self._finalize(connection, row, run, status, now)
            return self._with_run(connection, batch_id)

    def _expire_unfinished(self, connection: Connection, run_id: int, keys: Iterable[str]) -> None:
        stored = connection.execute(select(_RESULTS.c.key).where(_RESULTS.c.run_id == run_id))
        done = {read_key(r.key) for r in stored}
        missing = [key for key in keys if key_token(key) not in done]
        for start in range(0, len(missing), _CHUNK):
            connection.execute(
                insert(_RESULTS),
                [
                    {
                        "run_id": run_id,
                        "key": stored_key(key_token(key)),
                        "row_index": -1,
                        "ok": False,
                        "line": _expired_line(key_token(key)),
                    }
                    for key in missing[start : start + _CHUNK]
                ],
            )
        if missing:
            connection.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(failed=_RUNS.c.failed + len(missing))
            )

    def _finalize(
        self, connection: Connection, row: Any, run: Any, status: str, now: datetime
    ) -> None:
        sizes = {True: 0, False: 0}
        counts = {True: 0, False: 0}
        for ok in (True, False):
            for (line,) in connection.execute(
                select(_RESULTS.c.line).where(_RESULTS.c.run_id == run.id, _RESULTS.c.ok.is_(ok))
            ):
                sizes[ok] += len(line.encode("utf-8")) + 1
                counts[ok] += 1
        ids: dict[bool, str | None] = {True: None, False: None}
        for ok, kind in ((True, "output"), (False, "error")):
            if not counts[ok]:
                continue
            ids[ok] = new_id("file-")
            connection.execute(
                insert(_FILES).values(
                    id=ids[ok],
                    purpose="batch_output",
                    filename=f"{row.id}_{kind}.jsonl",
                    bytes=sizes[ok],
                    created_at=now,
                    upload_id=None,
                    batch_id=row.id,
                    kind=kind,
                )
            )
        values: dict[str, Any] = {
            "status": status,
            "output_file_id": ids[True],
            "error_file_id": ids[False],
            "finalizing_at": run.finished_at or now,
            f"{status}_at": now,
        }
        if status == "failed" and run.error:
            values["errors"] = [
                {"code": "batch_failed", "message": run.error, "param": None, "line": None}
            ]
        connection.execute(update(_BATCHES).where(_BATCHES.c.id == row.id).values(**values))


def keys_of(lines: Iterable[bytes]) -> Iterator[str]:
    """The custom_ids of an input file's lines (checked when its batch was created)."""
    for raw in lines:
        if raw.strip():
            yield str(json.loads(raw)["custom_id"])
