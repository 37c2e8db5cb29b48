"""What ``/api/v1/runs`` may do to the run of a batch: the batch's own routes say the rest.

A batch's run is cancelled through ``/api/v1/runs`` as through ``POST /v1/batches/{id}/
cancel`` (the batch ends ``cancelled``, its finished lines in its files). It is not deleted
while its batch goes on (409, naming the batch's cancel): the batch would lose its lines.
Once the batch has ended its run may be deleted: the batch stays, its files' content goes.
It is never resumed nor its failed rows retried: a batch that has ended is final, its files
read from the run's lines, as OpenAI's are.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ..http import ApiError
from .store import FINAL_BATCH_STATUSES, BatchStore

__all__ = ["refuse_for_batch"]


def refuse_for_batch(engine: Engine, run_id: int, action: str) -> None:
    """Raise a 409 when ``action`` (``delete``, ``resume``, ``retry_failed``) may not be
    done to ``run_id`` because it is a batch's run (blocking). A run about to be deleted is
    let go of by its ended batch first (SQLite may give its id to a new run)."""
    store = BatchStore(engine)
    batch = store.run_batch(run_id)
    if batch is None:
        return
    if action == "delete":
        if batch.status in FINAL_BATCH_STATUSES:
            store.detach_run(run_id)
            return
        raise ApiError(
            409,
            f"run {run_id} executes the batch {batch.id} ({batch.status}): cancel the batch "
            f"with POST /v1/batches/{batch.id}/cancel (its finished lines are kept in its "
            "output and error files); its run can be deleted once the batch has ended",
        )
    raise ApiError(
        409,
        f"run {run_id} executes the batch {batch.id} ({batch.status}): a batch is not run "
        "again (once it has ended its files are final); create a new batch "
        "(POST /v1/batches) of the lines to run again",
    )
