"""The batches' background work, one of the run executor's chores: nothing waits for a read.

At each of the executor's polls and wakes (a batch created, a run ended), `BatchKeeper`
checks the files of the batches ``validating`` (`BatchService.validate`: ``failed``, or
``in_progress`` as a new run), then brings up to date every batch a read would change
(`BatchStore.due`): past its ``expires_at`` it is ``expired`` (its finished lines kept, the
others in its error file as ``batch_expired``), its run ended it is finalized into its
files, its run cancelled through ``/api/v1/runs`` it is ``cancelled``. Every step is the
same transaction a read would make, so instances sharing a database may all do it.
"""

from __future__ import annotations

import asyncio
import logging

from .service import BatchService

__all__ = ["BatchKeeper"]

_log = logging.getLogger("openai_compat.app.batches")


class BatchKeeper:
    """Validates new batches and finalizes or expires the others, without any read."""

    def __init__(self, service: BatchService) -> None:
        self.service = service

    async def __call__(self) -> bool:
        """One pass; True when a run was queued (the executor claims it at once)."""
        queued = False
        for row in await asyncio.to_thread(self.service.store.validating):
            try:
                queued = await self.service.validate(row) or queued
            except Exception as exc:  # one batch's failure never stops the others
                _log.error("batch %s: its check failed: %s", row.id, type(exc).__name__)
        for batch_id in await asyncio.to_thread(self.service.store.due):
            try:
                await asyncio.to_thread(self.service.refresh, batch_id)
            except Exception as exc:
                _log.error("batch %s: could not be updated: %s", batch_id, type(exc).__name__)
        return queued
