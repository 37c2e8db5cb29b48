"""Files and batches in the database; a batch's status read from the run it is.

A batch is stored with what OpenAI shows of it; its progress is its run's. A batch is
created ``validating``, without a run: its file is checked in the background, then it is
``failed`` with the file's ``errors`` (`BatchStore.fail_validation`), or its run is created
in the same transaction that makes it ``in_progress`` (`BatchStore.start`), once, whichever
instance checks it first. Then its status follows the run (`BatchStore.refresh`, by the
background sweep or whichever instance reads it first, in one transaction with the batch's
row locked): a run still going is ``in_progress`` (or ``cancelling`` once a cancel was
asked), an ended run is finalized once, into the output file (the lines that succeeded) and
the error file (the lines that failed), and the batch is ``completed``, ``cancelled`` (its
run cancelled through the batch or through ``/api/v1/runs``), ``failed`` or, past its
``expires_at``, ``expired``: the run is then cancelled, its stored lines kept, and every line
it had not finished is written to the error file as OpenAI writes it (``batch_expired``),
so each ``custom_id`` is in exactly one of the two files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import LargeBinary, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy import cast as sql_cast
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


def _locked(connection: Connection, batch_id: str) -> Any | None:
    """The batch's row, locked until the transaction ends: every change of a batch's status
    reads it this way, so two instances, or a read and the background sweep, never both
    finalize it. A write that changes nothing takes the lock (SQLite has no ``SELECT ...
    FOR UPDATE``: there it takes the database's write lock, and the reads after it see
    every commit before it)."""
    connection.execute(
        update(_BATCHES).where(_BATCHES.c.id == batch_id).values(status=_BATCHES.c.status)
    )
    return connection.execute(select(_BATCHES).where(_BATCHES.c.id == batch_id)).first()


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

    def validating(self, limit: int = 20) -> list[Any]:
        """Batches whose file is not checked yet, oldest first."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(_BATCHES)
                    .where(_BATCHES.c.status == "validating")
                    .order_by(_BATCHES.c.created_at, _BATCHES.c.id)
                    .limit(limit)
                ).all()
            )

    def validating_input(self, file_id: str) -> str | None:
        """The id of a batch that is validating the input file ``file_id``, or None."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(_BATCHES.c.id)
                .where(_BATCHES.c.input_file_id == file_id, _BATCHES.c.status == "validating")
                .limit(1)
            ).scalar()

    def fail_validation(self, batch_id: str, errors: list[dict[str, Any]], **values: Any) -> bool:
        """A ``validating`` batch ``failed`` with OpenAI's ``errors``; False when it is no
        longer validating (another instance checked it, or it was cancelled)."""
        now = _now()
        with self.engine.begin() as connection:
            done = connection.execute(
                update(_BATCHES)
                .where(_BATCHES.c.id == batch_id, _BATCHES.c.status == "validating")
                .values(status="failed", errors=errors, failed_at=now, **values)
            )
        return done.rowcount == 1

    def start(
        self, batch_id: str, make_run: Callable[[Connection], Any], **values: Any
    ) -> Any | None:
        """A ``validating`` batch ``in_progress``, its run made by ``make_run`` in the same
        transaction (so a batch has one run, and a run is never without its batch); the
        run's row, or None when the batch is no longer validating."""
        now = _now()
        with self.engine.begin() as connection:
            row = _locked(connection, batch_id)
            if row is None or row.status != "validating":
                return None
            run = make_run(connection)
            connection.execute(
                update(_BATCHES)
                .where(_BATCHES.c.id == batch_id)
                .values(status="in_progress", run_id=run.id, in_progress_at=now, **values)
            )
            return run

    def due(self) -> list[str]:
        """The batches not ended that a refresh would change: past their window, their run
        ended or gone, or cancelled before they had a run."""
        now = _now()
        going = _BATCHES.c.status.in_(("in_progress", "cancelling", "finalizing", "validating"))
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_BATCHES.c.id)
                .select_from(_BATCHES.outerjoin(_RUNS, _RUNS.c.id == _BATCHES.c.run_id))
                .where(
                    going,
                    or_(
                        _BATCHES.c.expires_at <= now,
                        and_(
                            _BATCHES.c.run_id.is_not(None),
                            or_(_RUNS.c.id.is_(None), _RUNS.c.status.not_in(ACTIVE_STATUSES)),
                        ),
                        and_(_BATCHES.c.run_id.is_(None), _BATCHES.c.status == "cancelling"),
                    ),
                )
                .order_by(_BATCHES.c.created_at)
            ).all()
        return [row.id for row in rows]

    def run_batch(self, run_id: int) -> Any | None:
        """The batch whose run is ``run_id`` (its id and status), or None."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(_BATCHES.c.id, _BATCHES.c.status).where(_BATCHES.c.run_id == run_id)
            ).first()

    def detach_run(self, run_id: int) -> str | None:
        """Let an ended batch go of its run (about to be deleted: an id SQLite may give
        again to a new run); the batch's id, or None when no ended batch had it."""
        with self.engine.begin() as connection:
            batch_id = connection.execute(
                select(_BATCHES.c.id).where(
                    _BATCHES.c.run_id == run_id, _BATCHES.c.status.in_(FINAL_BATCH_STATUSES)
                )
            ).scalar()
            if batch_id is not None:
                connection.execute(
                    update(_BATCHES).where(_BATCHES.c.id == batch_id).values(run_id=None)
                )
        return batch_id

    def ask_cancel(self, batch_id: str) -> bool:
        """Mark a batch not finished as ``cancelling`` and cancel its run; False when the
        batch has ended already."""
        now = _now()
        with self.engine.begin() as connection:
            row = _locked(connection, batch_id)
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
        if row.status in FINAL_BATCH_STATUSES:
            return found
        now = _now()
        expires_at = _aware(row.expires_at)
        overdue = expires_at is not None and now >= expires_at
        if run is not None and run.status in ACTIVE_STATUSES and not overdue:
            return found
        if row.run_id is None and row.status == "validating" and not overdue:
            return found
        with self.engine.begin() as connection:
            row = _locked(connection, batch_id)
            assert row is not None  # batches are never deleted
            if row.status in FINAL_BATCH_STATUSES:
                return self._with_run(connection, batch_id)
            run = None
            if row.run_id is not None:
                run = connection.execute(
                    select(_RUNS).where(_RUNS.c.id == row.run_id).with_for_update()
                ).first()
            if run is None:
                self._end_without_run(connection, row, overdue, now)
                return self._with_run(connection, batch_id)
            extra: dict[str, Any] = {}
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
            elif run.status == "cancelled" and (row.cancelling_at is not None or not run.error):
                # Cancelled through the batch, or its run through /api/v1/runs (a run that
                # spent its budget is cancelled too, with an error: that batch failed).
                status = "cancelled"
                extra["cancelling_at"] = row.cancelling_at or run.finished_at or now
            else:
                status = "failed"
            self._finalize(connection, row, run, status, now, extra)
            return self._with_run(connection, batch_id)

    def _end_without_run(
        self, connection: Connection, row: Any, overdue: bool, now: datetime
    ) -> None:
        """End a batch that has no run: cancelled while validating, past its window, or its
        run deleted (no line of it can be shown any more)."""
        values: dict[str, Any]
        if row.run_id is not None:
            message = f"its run {row.run_id} was deleted, and the lines it had finished with it"
            values = {
                "status": "failed",
                "failed_at": now,
                "errors": [
                    {"code": "batch_failed", "message": message, "param": None, "line": None}
                ],
            }
        elif row.status == "cancelling":
            values = {"status": "cancelled", "cancelled_at": now}
        elif overdue:
            values = {"status": "expired", "expired_at": now}
        else:
            return
        connection.execute(update(_BATCHES).where(_BATCHES.c.id == row.id).values(**values))

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
        self,
        connection: Connection,
        row: Any,
        run: Any,
        status: str,
        now: datetime,
        extra: dict[str, Any],
    ) -> None:
        sizes = {True: 0, False: 0}
        counts = {True: 0, False: 0}
        # Each file's bytes summed by the database (its UTF-8 bytes, and a newline a line):
        # the lines themselves are not read, as a download reads them.
        if connection.dialect.name == "postgresql":
            octets = func.octet_length(_RESULTS.c.line)
        else:
            octets = func.length(sql_cast(_RESULTS.c.line, LargeBinary))
        for ok, count, size in connection.execute(
            select(_RESULTS.c.ok, func.count(), func.coalesce(func.sum(octets), 0))
            .where(_RESULTS.c.run_id == run.id)
            .group_by(_RESULTS.c.ok)
        ):
            counts[bool(ok)] = int(count)
            sizes[bool(ok)] = int(size) + int(count)
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
            **extra,
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
