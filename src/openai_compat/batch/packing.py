"""Packing embeddings rows: many rows' inputs in one request, the answer split back by row.

An embeddings request takes a list of inputs and answers one vector per input, each with the
``index`` of its input; sending a row per request wastes most of the time on round trips.
`EmbeddingsPacker` sends the rows a worker took together (rows whose payloads differ only in
``input``), splits ``data[]`` back by ``index``, and gives every row its own answer, so its
result line, key, resume, cache entry and cost stay its own:

- a row the answer lacks (a missing index, a wrong count) fails alone, saying so;
- a pack refused with 400 (one bad input refuses them all) is sent again row by row, so
  only the bad row fails;
- vectors are asked for in base64 (a quarter of the bytes of JSON numbers) unless the
  payload names an ``encoding_format``, and decoded to floats; a server that refuses base64
  is asked for floats from then on;
- the request's ``prompt_tokens`` are shared among its rows in proportion to the length of
  their inputs, adding up exactly to what the server reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..apis import Usage, decode_embedding
from ..endpoint import Completion, Endpoint
from ..errors import EndpointError, OpenAICompatError, StreamError, redact
from ._row_accounting import RowAccounting
from .governor import Governor, Ticket
from .results import BatchResult
from .row_results import RowResults, failed
from .scheduler import Scheduler
from .spec import DEFAULT_EMBEDDINGS_ROWS, MAX_ROWS_PER_REQUEST

__all__ = [
    "DEFAULT_EMBEDDINGS_ROWS",
    "MAX_ROWS_PER_REQUEST",
    "EmbeddingsPacker",
    "share_tokens",
]

# A row ready to send: its index, key, row, payload, and the payload's bytes when encoded.
Item = tuple[int, str | int, Any, dict[str, Any], bytes | None]


def share_tokens(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` shared in proportion to ``weights``, in whole tokens adding up to ``total``
    (the largest remainders get the leftover tokens; equal weights when all are 0).

    >>> share_tokens(10, [1, 1, 1])
    [4, 3, 3]
    >>> share_tokens(7, [10, 0, 30])
    [2, 0, 5]
    """
    if not weights:
        return []
    weights = [max(w, 0) for w in weights]
    whole = sum(weights)
    if whole == 0:
        weights, whole = [1] * len(weights), len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _input_length(value: Any) -> int:
    """What a row's input weighs in the share of tokens: its characters, or its tokens."""
    return len(value) if isinstance(value, str | list) else 1


def _packable(value: Any) -> bool:
    """One input: a text, or a list of token ids (a list of texts is several inputs)."""
    if isinstance(value, str):
        return True
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


class EmbeddingsPacker:
    """Sends a worker's rows in packed embeddings requests; one result per row."""

    def __init__(
        self,
        endpoint: Endpoint,
        results: RowResults,
        accounting: RowAccounting | None,
        scheduler: Scheduler,
        *,
        secrets: Sequence[str],
        notice: Callable[[str], None],
        base64: bool = True,
        governor: Governor | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.results = results
        self.accounting = accounting
        self.scheduler = scheduler
        # With one, a pack is one request under its limits: its tokens are the sum of its
        # inputs', reserved together and settled against the answer's usage.
        self.governor = governor
        self.secrets = tuple(secrets)
        self.notice = notice
        self.base64 = base64
        self.requests = 0

    async def send(self, items: Sequence[Item]) -> list[BatchResult]:
        """Every row's result (in no particular order)."""
        # Rows whose payloads are equal but for the input share a request. Payloads made
        # from one request format almost always are: compared as dicts (in C), a group
        # found is found at the first try.
        groups: list[tuple[dict[str, Any], list[Item]]] = []
        alone: list[Item] = []
        for item in items:
            payload = item[3]
            if not _packable(payload.get("input")):
                alone.append(item)
                continue
            rest = {k: v for k, v in payload.items() if k != "input"}
            for shared, group in groups:
                if shared == rest:
                    group.append(item)
                    break
            else:
                groups.append((rest, [item]))
        out: list[BatchResult] = []
        for group in [*(g for _, g in groups), *([item] for item in alone)]:
            out.extend(await self._send_group(group))
        return out

    def _body(self, group: Sequence[Item], base64: bool) -> dict[str, Any]:
        first = group[0][3]
        body = dict(first)
        if len(group) > 1:
            body["input"] = [item[3]["input"] for item in group]
        if base64 and "encoding_format" not in first:
            body["encoding_format"] = "base64"
        return body

    async def _send_group(self, group: Sequence[Item]) -> list[BatchResult]:
        ticket: Ticket | str | None = None
        try:
            if self.governor is None:
                await self.scheduler.ready()
            else:  # an embeddings answer has no output tokens to reserve
                ticket = await self.governor.admit(self._body(group, False), default_output=0)
        except Exception as exc:  # the rows fail, never their worker
            message = redact(f"{type(exc).__name__}: {exc}", self.secrets)
            return [
                self.results.complete(
                    failed(key, index, f"not sent: the run's rate limit failed: {message}"), row
                )
                for index, key, row, _, _ in group
            ]
        if isinstance(ticket, str):  # more than the whole token limit
            if len(group) > 1:  # in halves, each within it
                half = len(group) // 2
                return [
                    *await self._send_group(group[:half]),
                    *await self._send_group(group[half:]),
                ]
            index, key, row, _, _ = group[0]
            return [self.results.complete(failed(key, index, ticket), row)]
        tokens: int | None = None
        status: int | None = None
        try:
            results, tokens, status = await self._send_admitted(group)
        finally:  # cancelled too: its place under the limits goes back
            if isinstance(ticket, Ticket):
                assert self.governor is not None
                self.governor.settle(ticket, tokens, status)
        if results is None:  # one bad input refused the whole pack: each row alone finds which
            out: list[BatchResult] = []
            for item in group:
                out.extend(await self._send_group([item]))
            return out
        return results

    async def _send_admitted(
        self, group: Sequence[Item]
    ) -> tuple[list[BatchResult] | None, int | None, int | None]:
        """The rows' results (None: to be sent one by one), the tokens the answer reported
        and the status that refused it."""
        base64 = self.base64
        started = time.perf_counter()
        asked = base64 and "encoding_format" not in group[0][3]
        try:
            completion = await self._complete(group, base64)
        except EndpointError as exc:
            error: OpenAICompatError = exc
            if exc.status == 400 and asked:
                # Refused for base64, or for one bad input: the same rows in floats tell.
                try:
                    completion = await self._complete(group, False)
                except OpenAICompatError as again:
                    error = again
                else:
                    self._floats_from_now_on()
                    return self._split(group, completion, started), _tokens(completion), None
            status = error.status if isinstance(error, EndpointError) else None
            if status == 400 and len(group) > 1:
                return None, None, status
            self.scheduler.on_failure(error)
            return self._all_failed(group, error, started), None, status
        except OpenAICompatError as exc:
            self.scheduler.on_failure(exc)
            return self._all_failed(group, exc, started), None, None
        except Exception as exc:  # A bug must not lose the rows: they are failed.
            message = redact(f"{type(exc).__name__}: {exc}", self.secrets)
            failures = [
                self.results.complete(failed(key, index, message, None, 1), row)
                for index, key, row, _, _ in group
            ]
            return failures, None, None
        return self._split(group, completion, started), _tokens(completion), None

    async def _complete(self, group: Sequence[Item], base64: bool) -> Completion:
        self.requests += 1
        return await self.endpoint.complete(self._body(group, base64))

    def _floats_from_now_on(self) -> None:
        if self.base64:
            self.base64 = False
            self.notice(
                'the endpoint refused encoding_format "base64": asking for floats from now on'
            )

    def _all_failed(
        self, group: Sequence[Item], exc: OpenAICompatError, started: float
    ) -> list[BatchResult]:
        latency = round((time.perf_counter() - started) * 1000, 1)
        out = []
        for index, key, row, _, _ in group:
            result = failed(
                key,
                index,
                str(exc),
                exc.status if isinstance(exc, EndpointError) else None,
                exc.attempts,
                latency,
            )
            if isinstance(exc, EndpointError):
                result.request_id = exc.request_id
            if isinstance(exc, EndpointError | StreamError):
                self.results.refused(result, exc.body)
            out.append(self.results.complete(result, row))
        return out

    def _split(
        self, group: Sequence[Item], completion: Completion, started: float
    ) -> list[BatchResult]:
        response = completion.response
        latency = round((time.perf_counter() - started) * 1000, 1)
        data = response.get("data")
        items = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
        by_index: dict[int, dict[str, Any]] = {}
        for position, entry in enumerate(items):
            at = entry.get("index")
            if not isinstance(at, int) or isinstance(at, bool):
                at = position  # a server that leaves index out answers in order
            by_index.setdefault(at, entry)
        usage = Usage.parse(response.get("usage"))
        shares: list[int] | None = None
        if usage is not None and usage.input is not None:
            shares = share_tokens(usage.input, [_input_length(i[3].get("input")) for i in group])
        out = []
        for position, (index, key, row, payload, _) in enumerate(group):
            item = by_index.get(position)
            problem: str | None = None
            vector: list[float] | None = None
            if item is None:
                problem = (
                    f"the answer held no embedding for this row (input {position} of the "
                    f"{len(group)} sent in one request; it held {len(items)} embedding(s))"
                )
            else:
                try:
                    vector = decode_embedding(item.get("embedding"))
                except ValueError as exc:
                    problem = f"input {position} of the request: {exc}"
            if problem is not None or vector is None:
                result = failed(
                    key, index, problem or "no embedding", None, completion.attempts, latency
                )
                result.request_id = completion.request_id
                out.append(self.results.complete(result, row))
                continue
            row_usage: dict[str, Any] | None = None
            if shares is not None:
                row_usage = {"prompt_tokens": shares[position], "total_tokens": shares[position]}
            answer: dict[str, Any] = {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                "model": response.get("model"),
                "usage": row_usage,
            }
            result = self.results.answered(
                key,
                index,
                answer,
                completion.warnings,
                completion.attempts,
                latency,
                completion.request_id,
            )
            if self.accounting is not None:
                self.accounting.price(result, answer, payload)
                if result.error is None:
                    body = self.endpoint.prepare(payload)
                    self.accounting.store(body, answer, completion.request_id)
            out.append(self.results.complete(result, row))
        return out


def _tokens(completion: Completion) -> int | None:
    usage = Usage.parse(completion.response.get("usage"))
    return None if usage is None else usage.tokens
