"""Runs, uploads and results in the database: every state change is one short transaction.

Exactly once: a run's results are written with its progress counters in one transaction
(`RunStore.write_results`), and only while the writer holds the run's lease and the run is
still ``running``; the lease row is updated first, so on PostgreSQL the row lock orders
the write against a take-over or a cancel. A write after the lease was lost changes
nothing. ``(run_id, key)`` is unique besides, so a key can never be stored twice. A write
the database refuses (a key stored already, a value it cannot hold) is `ResultsRefused`:
the run then ends as failed, rather than being let go and claimed again, its rows sent
again after every lease, forever. A key holding NUL, which PostgreSQL's text cannot hold,
is stored escaped (`stored_key`), on every database alike.

Leases: an instance claims a run (``queued``, ``interrupted``, or ``running`` with an
expired lease) with a conditional UPDATE (PostgreSQL: after ``SELECT ... FOR UPDATE SKIP
LOCKED`` picks a candidate no other instance is claiming), and renews it with each write
and a heartbeat. A dead instance's lease expires; another instance then claims the run and
continues from its stored results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError

from ...batch.budget import usd
from ...batch.keys import read_key, stored_key
from ...errors import OpenAICompatError
from .stored import BudgetFrom, StoredRun
from .tables import ACTIVE_STATUSES, FINAL_STATUSES, RunResultRow, RunRow, UploadRow

__all__ = [
    "Claimed",
    "Progress",
    "ResultRecord",
    "ResultsRefused",
    "RunStore",
]

_RUNS = cast(Table, RunRow.__table__)
_RESULTS = cast(Table, RunResultRow.__table__)
_UPLOADS = cast(Table, UploadRow.__table__)


def _now() -> datetime:
    return datetime.now(UTC)


def _uses_upload(upload_id: str) -> Any:
    """The runs whose input is the upload ``upload_id``."""
    return _RUNS.c.spec[("input", "upload_id")].as_string() == upload_id


class ResultsRefused(OpenAICompatError):
    """The database refused to store a run's results (a key stored already, a value it
    cannot hold): the run cannot go on, and ends as failed with this message."""


class _Lost(Exception):
    """The run is no longer held by this writer: a signal inside the store's write (raised
    to roll the transaction back, caught around it), never an error a caller sees."""


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One result as it is stored: its key token, row index, outcome and CLI line."""

    key: str
    row_index: int
    ok: bool
    line: str


@dataclass(frozen=True, slots=True)
class Progress:
    """What a write adds to the run's figures."""

    ok: int = 0
    failed: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    # USD, None when no result had a cost.
    cost: float | None = None
    # With a schema: the mode asked in (None: no result said) and rows by how they validated.
    schema_mode: str | None = None
    valid_first: int = 0
    valid_reasked: int = 0
    invalid: int = 0


@dataclass(frozen=True)
class Claimed:
    """A run an instance now holds: what it needs to continue it."""

    id: int
    connector_id: int
    stored: StoredRun
    active_s: float
    total: int | None
    # What the run spent so far (its budget is counted against it).
    cost: float | None = None
    tokens: int = 0


class RunStore:
    """Uploads, runs and their results (synchronous; call from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    # -- uploads ---------------------------------------------------------------------------
    def add_upload(self, values: Mapping[str, Any]) -> Any:
        """Record an upload (its columns' ``values``); its row."""
        with self.engine.begin() as connection:
            connection.execute(insert(_UPLOADS).values(**values))
            return connection.execute(select(_UPLOADS).where(_UPLOADS.c.id == values["id"])).one()

    def upload(self, upload_id: str) -> Any | None:
        """The upload's row, or None."""
        with self.engine.connect() as connection:
            return connection.execute(select(_UPLOADS).where(_UPLOADS.c.id == upload_id)).first()

    def upload_ids(self) -> set[str]:
        """The id of every upload recorded (files without one are orphans)."""
        with self.engine.connect() as connection:
            return {row.id for row in connection.execute(select(_UPLOADS.c.id))}

    def delete_upload(self, upload_id: str) -> tuple[Any | None, list[int]]:
        """Delete an upload's row unless a run that is not finished uses it.

        ``(its row, [])`` when deleted (the caller removes its file); ``(its row, run ids)``
        when runs not finished use it (nothing deleted); ``(None, [])`` when there is none.
        """
        with self.engine.begin() as connection:
            row = connection.execute(
                select(_UPLOADS).where(_UPLOADS.c.id == upload_id).with_for_update()
            ).first()
            if row is None:
                return None, []
            busy = connection.execute(
                select(_RUNS.c.id)
                .where(_uses_upload(upload_id), _RUNS.c.status.in_(ACTIVE_STATUSES))
                .order_by(_RUNS.c.id)
            ).all()
            if busy:
                return row, [int(r.id) for r in busy]
            connection.execute(delete(_UPLOADS).where(_UPLOADS.c.id == upload_id))
        return row, []

    # -- runs ------------------------------------------------------------------------------
    def create(
        self,
        connector_id: int,
        stored: StoredRun,
        output_names: list[str],
        total: int | None,
    ) -> Any:
        """A new ``queued`` run; its row."""
        with self.engine.begin() as connection:
            return self.create_in(connection, connector_id, stored, output_names, total)

    def create_in(
        self,
        connection: Connection,
        connector_id: int,
        stored: StoredRun,
        output_names: list[str],
        total: int | None,
    ) -> Any:
        """`create` inside the caller's transaction (the run is made with what it is for)."""
        now = _now()
        run_id = connection.execute(
            insert(_RUNS)
            .values(
                connector_id=connector_id,
                status="queued",
                spec=stored.to_json(),
                output_names=output_names,
                total=total,
                ok=0,
                failed=0,
                skipped=0,
                requests=0,
                prompt_tokens=0,
                completion_tokens=0,
                total_tokens=0,
                schema_valid_first=0,
                schema_valid_reasked=0,
                schema_invalid=0,
                # With prices a run costs 0 until a result costs something.
                cost=0.0 if stored.prices is not None else None,
                active_s=0.0,
                live={},
                created_at=now,
                updated_at=now,
            )
            .returning(_RUNS.c.id)
        ).scalar_one()
        return connection.execute(select(_RUNS).where(_RUNS.c.id == run_id)).one()

    def get(self, run_id: int) -> Any | None:
        """The run's row, or None."""
        with self.engine.connect() as connection:
            return connection.execute(select(_RUNS).where(_RUNS.c.id == run_id)).first()

    def page(
        self, *, connector_id: int | None, status: str | None, before: int | None, limit: int
    ) -> tuple[list[Any], int, bool]:
        """Runs newest first (ids below ``before``), filtered; the page's rows, total, and more."""
        where = []
        if connector_id is not None:
            where.append(_RUNS.c.connector_id == connector_id)
        if status is not None:
            where.append(_RUNS.c.status == status)
        paged = [*where, _RUNS.c.id < before] if before is not None else where
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_RUNS).where(*paged).order_by(_RUNS.c.id.desc()).limit(limit + 1)
            ).all()
            total = connection.execute(
                select(func.count()).select_from(_RUNS).where(*where)
            ).scalar_one()
        return list(rows[:limit]), int(total), len(rows) > limit

    def cancel(self, run_id: int) -> Any | None:
        """Cancel a run not finished yet (its instance stops it at its next write)."""
        now = _now()
        with self.engine.begin() as connection:
            connection.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id, _RUNS.c.status.in_(ACTIVE_STATUSES))
                .values(status="cancelled", finished_at=now, updated_at=now, live={})
            )
        return self.get(run_id)

    def resume(self, run_id: int, from_statuses: Sequence[str]) -> bool:
        """Queue a stopped run again (its stored results stay: it continues after them).

        Its budget (``max_cost``, ``max_tokens``) starts afresh: it counts from what the run
        had spent when it was resumed (``budget_from`` in its spec).
        """
        with self.engine.begin() as connection:
            row = connection.execute(
                select(_RUNS.c.spec, _RUNS.c.cost, _RUNS.c.total_tokens)
                .where(_RUNS.c.id == run_id, _RUNS.c.status.in_(from_statuses))
                .with_for_update()
            ).first()
            if row is None:
                return False
            spent = BudgetFrom(cost=row.cost or 0.0, tokens=int(row.total_tokens))
            stored = StoredRun.model_validate(row.spec).model_copy(update={"budget_from": spent})
            done = connection.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id, _RUNS.c.status.in_(from_statuses))
                .values(
                    spec=stored.to_json(),
                    status="queued",
                    error=None,
                    finished_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=_now(),
                )
            )
        return done.rowcount == 1

    def retry_failed(self, run_id: int) -> int | None:
        """Remove a finished run's failed results and queue it again: those rows run again.

        The number of results removed, or None when the run is not finished.
        """
        with self.engine.begin() as connection:
            row = connection.execute(
                select(_RUNS.c.status).where(_RUNS.c.id == run_id).with_for_update()
            ).first()
            if row is None or row.status not in FINAL_STATUSES:
                return None
            removed = connection.execute(
                delete(_RESULTS).where(_RESULTS.c.run_id == run_id, _RESULTS.c.ok.is_(False))
            ).rowcount
            connection.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(
                    status="queued",
                    failed=_RUNS.c.failed - removed,
                    # An invalid answer is a failed row, and every failed row was removed:
                    # none is invalid until asked again.
                    schema_invalid=0,
                    error=None,
                    finished_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=_now(),
                )
            )
        return int(removed)

    def delete(self, run_id: int) -> bool:
        """Delete a run and its results (a running one stops at its next write)."""
        return self.delete_with_upload(run_id)[0]

    def delete_with_upload(self, run_id: int) -> tuple[bool, Any | None]:
        """Delete a run and its results, and its upload's row when no other run uses it:
        whether the run was there, and that upload's row (the caller removes its file)."""
        with self.engine.begin() as connection:
            spec = connection.execute(select(_RUNS.c.spec).where(_RUNS.c.id == run_id)).scalar()
            connection.execute(delete(_RESULTS).where(_RESULTS.c.run_id == run_id))
            gone = connection.execute(delete(_RUNS).where(_RUNS.c.id == run_id)).rowcount
            given = (spec or {}).get("input") or {}
            upload_id = given.get("upload_id") if isinstance(given, dict) else None
            if gone != 1 or not isinstance(upload_id, str):
                return gone == 1, None
            upload = connection.execute(
                select(_UPLOADS).where(_UPLOADS.c.id == upload_id).with_for_update()
            ).first()
            used = connection.execute(
                select(func.count()).select_from(_RUNS).where(_uses_upload(upload_id))
            ).scalar_one()
            if upload is None or used:
                return True, None
            connection.execute(delete(_UPLOADS).where(_UPLOADS.c.id == upload_id))
        return True, upload

    def counts_by_status(self) -> dict[str, int]:
        """How many runs are in each status."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_RUNS.c.status, func.count()).group_by(_RUNS.c.status)
            ).all()
        return {status: int(count) for status, count in rows}

    # -- results ---------------------------------------------------------------------------
    def results_page(
        self, run_id: int, *, after: int, limit: int, failed_only: bool
    ) -> tuple[list[tuple[int, str]], bool]:
        """Up to ``limit`` stored lines after ``seq`` ``after``: ``(seq, line)``, and more."""
        where = [_RESULTS.c.run_id == run_id, _RESULTS.c.seq > after]
        if failed_only:
            where.append(_RESULTS.c.ok.is_(False))
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_RESULTS.c.seq, _RESULTS.c.line)
                .where(*where)
                .order_by(_RESULTS.c.seq)
                .limit(limit + 1)
            ).all()
        return [(int(r.seq), r.line) for r in rows[:limit]], len(rows) > limit

    def iter_lines(self, run_id: int, chunk: int = 2000) -> Iterator[list[str]]:
        """Every stored line of the run, in the order stored, a chunk at a time."""
        after = 0
        while True:
            page, more = self.results_page(run_id, after=after, limit=chunk, failed_only=False)
            if page:
                yield [line for _, line in page]
                after = page[-1][0]
            if not more:
                return

    def done_keys(self, run_id: int) -> set[str]:
        """The keys already stored (a continued run skips their rows)."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(_RESULTS.c.key).where(_RESULTS.c.run_id == run_id))
            return {read_key(row.key) for row in rows}

    # -- execution -------------------------------------------------------------------------
    def _claimable(self, now: datetime) -> Any:
        return and_(
            _RUNS.c.status.in_(ACTIVE_STATUSES),
            or_(_RUNS.c.lease_owner.is_(None), _RUNS.c.lease_expires_at < now),
        )

    def claim(self, owner: str, lease_s: float) -> Claimed | None:
        """Take the oldest run no live instance holds; None when there is none."""
        now = _now()
        with self.engine.begin() as connection:
            pick = select(_RUNS.c.id).where(self._claimable(now)).order_by(_RUNS.c.id).limit(1)
            if self.postgres:
                pick = pick.with_for_update(skip_locked=True)
            run_id = connection.execute(pick).scalar()
            if run_id is None:
                return None
            taken = connection.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id, self._claimable(now))
                .values(
                    status="running",
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=lease_s),
                    started_at=func.coalesce(_RUNS.c.started_at, now),
                    updated_at=now,
                )
            )
            if taken.rowcount != 1:
                return None
            row = connection.execute(select(_RUNS).where(_RUNS.c.id == run_id)).one()
        return Claimed(
            row.id,
            row.connector_id,
            StoredRun.model_validate(row.spec),
            float(row.active_s),
            row.total,
            row.cost,
            int(row.total_tokens),
        )

    def _held(self, run_id: int, owner: str) -> Any:
        return and_(_RUNS.c.id == run_id, _RUNS.c.lease_owner == owner, _RUNS.c.status == "running")

    def write_results(
        self,
        run_id: int,
        owner: str,
        lease_s: float,
        records: Sequence[ResultRecord],
        progress: Progress,
        active_s: float,
        live: dict[str, Any],
    ) -> bool:
        """Store results with the run's progress, in one transaction, if ``owner`` still
        holds the run and it is still running; False (nothing written) otherwise."""
        now = _now()
        try:
            with self.engine.begin() as connection:
                held = connection.execute(
                    update(_RUNS)
                    .where(self._held(run_id, owner))
                    .values(
                        ok=_RUNS.c.ok + progress.ok,
                        failed=_RUNS.c.failed + progress.failed,
                        requests=_RUNS.c.requests + progress.requests,
                        prompt_tokens=_RUNS.c.prompt_tokens + progress.prompt_tokens,
                        completion_tokens=_RUNS.c.completion_tokens + progress.completion_tokens,
                        total_tokens=_RUNS.c.total_tokens + progress.total_tokens,
                        schema_mode=func.coalesce(progress.schema_mode, _RUNS.c.schema_mode),
                        schema_valid_first=_RUNS.c.schema_valid_first + progress.valid_first,
                        schema_valid_reasked=(
                            _RUNS.c.schema_valid_reasked + progress.valid_reasked
                        ),
                        schema_invalid=_RUNS.c.schema_invalid + progress.invalid,
                        active_s=active_s,
                        live=live,
                        lease_expires_at=now + timedelta(seconds=lease_s),
                        updated_at=now,
                    )
                )
                if held.rowcount != 1:
                    raise _Lost("lost")
                if progress.cost is not None:
                    # Added exactly, in decimal (the row is locked by the update above):
                    # in floating point ten $0.10 rows would not make $1.00.
                    before = connection.execute(
                        select(_RUNS.c.cost).where(_RUNS.c.id == run_id)
                    ).scalar()
                    connection.execute(
                        update(_RUNS)
                        .where(_RUNS.c.id == run_id)
                        .values(cost=float(usd(before) + usd(progress.cost)))
                    )
                if records:
                    connection.execute(
                        insert(_RESULTS),
                        [
                            {
                                "run_id": run_id,
                                "key": stored_key(r.key),
                                "row_index": r.row_index,
                                "ok": r.ok,
                                "line": r.line,
                            }
                            for r in records
                        ],
                    )
        except _Lost:
            return False
        except (IntegrityError, DataError) as exc:
            # Only the lease holder writes, and a run's keys are unique: a refused write is
            # not a race to retry. Let go, the run would be claimed again and its rows sent
            # again after every lease; so it ends here, and nothing is stored twice.
            raise ResultsRefused(
                f"the database refused to store {len(records)} results of this run "
                f"({type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__}); "
                "the run was stopped so that no row is sent again: its stored results are "
                "kept, and resume continues after them"
            ) from None
        return True

    def heartbeat(self, owner: str, run_ids: Sequence[int], lease_s: float) -> set[int]:
        """Renew the leases of ``run_ids``; the ids still held (the others are lost)."""
        if not run_ids:
            return set()
        now = _now()
        with self.engine.begin() as connection:
            connection.execute(
                update(_RUNS)
                .where(
                    _RUNS.c.id.in_(run_ids),
                    _RUNS.c.lease_owner == owner,
                    _RUNS.c.status == "running",
                )
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
            )
            rows = connection.execute(
                select(_RUNS.c.id).where(
                    _RUNS.c.id.in_(run_ids),
                    _RUNS.c.lease_owner == owner,
                    _RUNS.c.status == "running",
                )
            ).all()
        return {row.id for row in rows}

    def finish(
        self, run_id: int, owner: str, status: str, error: str | None, *, exact_total: bool
    ) -> bool:
        """End a held run: its final status and error; the lease is let go."""
        now = _now()
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "finished_at": now,
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "live": {},
        }
        if exact_total:
            values["total"] = _RUNS.c.ok + _RUNS.c.failed + _RUNS.c.skipped
        with self.engine.begin() as connection:
            done = connection.execute(
                update(_RUNS).where(self._held(run_id, owner)).values(**values)
            )
        return done.rowcount == 1

    def set_total(self, run_id: int, total: int) -> None:
        """Record the input's row count, once it is known."""
        with self.engine.begin() as connection:
            connection.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(total=total))

    def release(self, owner: str) -> int:
        """Let go of every run ``owner`` holds (a stopping instance): they are
        ``interrupted`` and continue at the next start, or on another instance."""
        with self.engine.begin() as connection:
            done = connection.execute(
                update(_RUNS)
                .where(_RUNS.c.lease_owner == owner, _RUNS.c.status == "running")
                .values(
                    status="interrupted",
                    lease_owner=None,
                    lease_expires_at=None,
                    live={},
                    updated_at=_now(),
                )
            )
        return int(done.rowcount)

    def release_all(self) -> int:
        """SQLite has one instance: at its start, every lease is a dead instance's."""
        with self.engine.begin() as connection:
            done = connection.execute(
                update(_RUNS)
                .where(_RUNS.c.status == "running")
                .values(status="interrupted", lease_owner=None, lease_expires_at=None)
            )
        return int(done.rowcount)
