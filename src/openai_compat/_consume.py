"""Consuming an exchange: its records as they come, then what the answer came to.

Every door reads an answer the same way, through `Consumer`: the connector (records, then
an assembled record and a warning), `Endpoint.complete` and batch runs (the answer), and the
application (JSON, or server-sent events). So the assembled answer, the cut-off detection
and the warning's wording exist once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ._exchange import Exchange
from .apis import Assembler

__all__ = ["Consumer", "Outcome"]


@dataclass(slots=True)
class Outcome:
    """What an answer came to, once read to its end.

    ``answer`` is the JSON answer, or the answer its dialect assembled from a stream (None
    when nothing came); ``warnings`` holds what the caller should be told (a stream that may
    have been cut off).
    """

    answer: dict[str, Any] | None
    streamed: bool
    chunks: int
    truncated: bool
    attempts: int
    request_id: str | None
    warnings: list[str] = field(default_factory=list)


class Consumer:
    """Iterate it for the records (dicts) of ``exchange``; then `outcome` says what they came to.

    With ``assemble`` (the default), a streamed answer is assembled by the exchange's dialect
    into the answer a plain request returns (a ``chat.completion``) as it passes; without
    it, records pass straight through and a streamed answer's ``outcome().answer`` is None.

    >>> async def summary(endpoint, payload):
    ...     async with endpoint.request(payload) as exchange:
    ...         consumer = Consumer(exchange)
    ...         records = [record async for record in consumer]
    ...     return records, consumer.outcome()
    """

    __slots__ = ("_assemble", "_assembler", "_exchange")

    def __init__(self, exchange: Exchange, *, assemble: bool = True) -> None:
        self._exchange = exchange
        self._assemble = assemble
        self._assembler: Assembler | None = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        records = self._exchange.__aiter__()
        # Whether the answer is a stream is known once the exchange is iterated: a JSON
        # answer (most requests of a batch) passes straight through, with no wrapper. A
        # traced stream is assembled anyway: its span records what the answer came to.
        traced = self._exchange.trace is not None
        if not ((self._assemble or traced) and self._exchange.streamed):
            return records
        self._assembler = self._exchange.dialect.assembler()
        return self._assembling(records, self._assembler)

    @staticmethod
    async def _assembling(
        records: AsyncIterator[dict[str, Any]], assembler: Assembler
    ) -> AsyncIterator[dict[str, Any]]:
        async for record in records:
            assembler.add(record)
            yield record

    def outcome(self) -> Outcome:
        """What the answer came to (call it after iterating)."""
        exchange = self._exchange
        answer = exchange.answer
        if exchange.streamed:
            assembler = self._assembler
            answer = assembler.result() if assembler is not None and exchange.chunks else None
        if answer is not None:
            answer = exchange.dialect.finish_answer(answer)
        if exchange.trace is not None:
            exchange.trace.answer = answer
        if not self._assemble and exchange.streamed:
            answer = None
        truncated = exchange.truncated
        return Outcome(
            answer=answer,
            streamed=exchange.streamed,
            chunks=exchange.chunks,
            truncated=truncated,
            attempts=exchange.attempts,
            request_id=exchange.request_id,
            warnings=[exchange.dialect.cut_off_warning(exchange.chunks)] if truncated else [],
        )
