"""``auto`` schema mode found once for a job whose workers each make a run of their own.

A Spark job's partitions are runs of their own, each of which would probe the modes the
server refuses or ignores with its first row. The driver finds the mode once instead, with
the job's first row, and hands it to every task (`decided_mode`). The probe's answer is
not kept: the row is sent again by its task, in that mode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..endpoint import Endpoint
from ..errors import OpenAICompatError, redact
from ..retries import RetryPolicy
from .spec import RunSpec

__all__ = ["decided_mode"]

_log = logging.getLogger(__name__)


async def decided_mode(
    spec: RunSpec, row: Mapping[str, Any], retry: RetryPolicy | None = None
) -> str | None:
    """The mode ``auto`` takes against the spec's endpoint, found with ``row``; None when
    the spec names a mode itself, has no schema, or the probe failed (each worker then
    finds it, as it would have)."""
    structured = spec.structured()
    if structured is None or structured.mode is not None:
        return None
    try:
        payload = spec.payload_builder.build(row)
        async with Endpoint(spec.config, retry=retry) as endpoint:

            async def send(body: dict[str, Any]) -> Any:
                return await endpoint.complete(body)

            return await structured.choose(send, payload)
    except OpenAICompatError as exc:
        _log.warning(
            "the schema mode could not be found once for the job (%s): each task finds it",
            redact(str(exc), spec.config.secrets),
        )
        return None
