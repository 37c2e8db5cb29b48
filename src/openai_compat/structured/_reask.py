"""Asking for a schema-valid answer: the mode (chosen once per run under ``auto``), the
validation of every answer, and re-asks naming the validation errors.

`Structured` holds what a run shares (the schema, its compiled validator, the mode once
chosen, the counts); `Structured.ask` runs one payload through a ``send`` function (an
`Endpoint`'s ``complete``) until an answer validates or the re-asks run out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._text import excerpt
from ..errors import ConfigurationError, EndpointError, OpenAICompatError
from . import _responses
from ._modes import (
    AUTO_ORDER,
    answer_value,
    apply_mode,
    check_mode,
    refuses_mode,
    schema_field,
)
from ._schema import Schema, load_schema
from ._validate import Validator

__all__ = [
    "DEFAULT_REASKS",
    "Answer",
    "Sent",
    "Structured",
    "StructuredCounts",
    "StructuredOutputError",
]

DEFAULT_REASKS = 2
_MAX_REASKS = 20
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


class Sent(Protocol):
    """What ``send`` returns (an `openai_compat.endpoint.Completion`)."""

    response: dict[str, Any]
    attempts: int
    latency_s: float
    request_id: str | None
    warnings: list[str]
    truncated: bool


Send = Callable[[dict[str, Any]], Awaitable[Sent]]


class StructuredOutputError(OpenAICompatError):
    """No answer validated against the schema: ``problems`` are the last answer's
    (``"$.path: reason"``), ``response`` the last answer, ``answers`` how many there were."""

    def __init__(
        self, message: str, *, problems: list[str], response: Any, answers: int, attempts: int
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.problems = problems
        self.response = response
        self.answers = answers


@dataclass(slots=True)
class Answer:
    """What asking one payload came to.

    ``value`` is the valid JSON value (None with ``problems`` when none validated);
    ``response`` the last answer; ``answers`` how many answers were read (1: the first was
    valid); ``attempts`` the HTTP requests made (retries, refused modes and re-asks
    included); ``usage`` the token counts of all of them added up.
    """

    value: Any
    response: dict[str, Any]
    mode: str
    answers: int
    attempts: int
    latency_s: float
    usage: dict[str, int] | None
    problems: list[str] = field(default_factory=list)
    request_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    first_body: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        """True when an answer validated."""
        return not self.problems

    @property
    def outcome(self) -> str:
        """``first`` (valid first answer), ``reasked`` (valid after re-asks) or ``invalid``."""
        if self.problems:
            return "invalid"
        return "first" if self.answers == 1 else "reasked"

    def error_message(self) -> str:
        """The failed row's message: ``after N attempts: $.path: reason; ...``."""
        return f"after {self.answers} attempts: " + "; ".join(self.problems[:3])


@dataclass(slots=True)
class StructuredCounts:
    """Rows of a run by how their answer validated."""

    valid_first: int = 0
    valid_reasked: int = 0
    invalid: int = 0
    reasks: int = 0

    def add(self, answer: Answer) -> None:
        """Count one row's answer."""
        outcome = answer.outcome
        if outcome == "first":
            self.valid_first += 1
        elif outcome == "reasked":
            self.valid_reasked += 1
        else:
            self.invalid += 1
        self.reasks += answer.answers - 1


def _add_usage(total: dict[str, int] | None, response: dict[str, Any]) -> dict[str, int] | None:
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return total
    total = dict(total or {})
    for key in _USAGE_KEYS:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
    return total


def reask_message(problems: list[str]) -> str:
    """The user message of a re-ask: the validation errors, one per line.

    >>> print(reask_message(["$.urgency: 'soon' is not of type 'integer'"]))
    Your answer is not valid against the JSON Schema:
    - $.urgency: 'soon' is not of type 'integer'
    Answer again with the corrected JSON object only.
    """
    lines = "\n".join(f"- {problem}" for problem in problems)
    return (
        f"Your answer is not valid against the JSON Schema:\n{lines}\n"
        "Answer again with the corrected JSON object only."
    )


class Structured:
    """The structured outputs of one run: ``schema`` (anything `load_schema` takes),
    ``mode`` (``auto`` or one of the four), ``reasks`` (answers asked again at most).

    >>> s = Structured({"type": "object", "properties": {"n": {"type": "integer"}}},
    ...                mode="prompt", reasks=1)
    >>> s.mode, s.check({"n": 1}), s.check({"n": "x"})
    ('prompt', [], ['$.n: "x" is not of type "integer"'])
    """

    def __init__(
        self, schema: Any, *, mode: str = "auto", reasks: int = DEFAULT_REASKS, api: str = "chat"
    ) -> None:
        self.schema: Schema = load_schema(schema)
        schema_field(api)
        #: The dialect of the requests (``chat`` or ``responses``): where the schema goes.
        self.api = api
        self.requested_mode = check_mode(mode)
        if isinstance(reasks, bool) or not isinstance(reasks, int) or not 0 <= reasks <= 20:
            raise ConfigurationError(
                f"must be 0 to {_MAX_REASKS} (answers asked again), got {reasks!r}",
                field="reasks",
            )
        self.reasks = reasks
        self.validator = Validator(self.schema.schema)
        self.mode: str | None = None if mode == "auto" else mode
        #: Why ``auto`` left a mode out (one sentence per mode it tried and left).
        self.notes: list[str] = []
        self.counts = StructuredCounts()
        self._choosing: asyncio.Lock | None = None

    def check(self, value: Any) -> list[str]:
        """The problems of ``value`` against the schema (none: valid)."""
        return self.validator.problems(value)

    def cache_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The response cache's key of a row's ``body``: the schema is part of it, so an
        answer cached by a run without it (or with another) is never taken for this one."""
        return {**body, "x-openai-compat-schema": self.schema.to_json()}

    def validate_answer(self, response: dict[str, Any]) -> tuple[Any, list[str], str | None]:
        """The value of an answer read the run's way, its problems, and its text."""
        value, text, _ = answer_value(self.mode or "prompt", response, self.api)
        return value, self._problems(value, text), text

    def _problems(self, value: Any, text: str | None) -> list[str]:
        if value is None:
            if not text:
                return ["$: the answer has no text and no tool call"]
            return [f"$: the answer is not JSON: {excerpt(text, 80)!r}"]
        return self.check(value)

    async def _choose(self, send: Send, payload: dict[str, Any]) -> tuple[str, Sent, int]:
        """Under ``auto``, the first row asks in the strongest mode, then the next ones,
        until the server takes one: the mode is then the run's. Other rows wait for it."""
        if self._choosing is None:
            self._choosing = asyncio.Lock()
        async with self._choosing:
            if self.mode is None:
                return await self._probe(send, payload)
        # Chosen while this row waited: sent outside the lock, as every later row is.
        sent = await send(apply_mode(self.mode, payload, self.schema, self.api))
        return self.mode, sent, 0

    async def _probe(self, send: Send, payload: dict[str, Any]) -> tuple[str, Sent, int]:
        spent = 0
        last = len(AUTO_ORDER) - 1
        for position, mode in enumerate(AUTO_ORDER):
            try:
                sent = await send(apply_mode(mode, payload, self.schema, self.api))
            except EndpointError as exc:
                # The probe adds only the mode's fields to the row's payload, so a 400/422 to
                # it is taken as the mode's refusal, named or not (llama-server answers
                # "Failed to initialize samplers" to a schema its grammar cannot hold).
                if position < last and refuses_mode(mode, exc.status):
                    spent += exc.attempts
                    self.notes.append(f"{mode}: refused ({exc.status})")
                    continue
                exc.attempts += spent
                raise
            _, _, followed = answer_value(mode, sent.response, self.api)
            if not followed and position < last:
                spent += sent.attempts
                self.notes.append(f"{mode}: ignored")
                continue
            self.mode = mode
            return mode, sent, spent
        raise AssertionError("unreachable: prompt is always taken")

    async def choose(self, send: Send, payload: dict[str, Any]) -> str:
        """The run's mode: under ``auto``, found with ``payload`` as a first row finds it
        (its answer is not kept); else the mode given. An engine whose workers each make a
        run of their own finds it once, so that they do not each probe again."""
        if self.mode is None:
            mode, _, _ = await self._choose(send, payload)
            return mode
        return self.mode

    async def ask(self, send: Send, payload: dict[str, Any]) -> Answer:
        """Send ``payload`` in the run's mode until an answer validates or the re-asks run
        out. An error answer raises (its ``attempts`` include the requests made before)."""
        spent = 0
        if self.mode is None:
            mode, sent, spent = await self._choose(send, payload)
        else:
            mode = self.mode
            sent = await send(apply_mode(mode, payload, self.schema, self.api))
        body = apply_mode(mode, payload, self.schema, self.api)
        first_body = body
        attempts = spent + sent.attempts
        latency = sent.latency_s
        usage = _add_usage(None, sent.response)
        answers = 1
        while True:
            value, text, _ = answer_value(mode, sent.response, self.api)
            problems = self._problems(value, text)
            if not problems or answers > self.reasks:
                break
            body = self._reask_body(body, text or "", problems)
            try:
                sent = await send(body)
            except OpenAICompatError as exc:
                exc.attempts += attempts
                raise
            attempts += sent.attempts
            latency += sent.latency_s
            usage = _add_usage(usage, sent.response)
            answers += 1
        answer = Answer(
            value=None if problems else value,
            response=sent.response,
            mode=mode,
            answers=answers,
            attempts=attempts,
            latency_s=latency,
            usage=usage,
            problems=problems,
            request_id=sent.request_id,
            warnings=list(sent.warnings),
            truncated=sent.truncated,
            first_body=first_body,
        )
        self.counts.add(answer)
        return answer

    def _reask_body(self, body: dict[str, Any], text: str, problems: list[str]) -> dict[str, Any]:
        """``body`` with the model's answer and the validation errors after its messages."""
        if self.api == "responses":
            return _responses.reask_input(body, text, reask_message(problems))
        messages = body.get("messages")
        return {
            **body,
            "messages": [
                *(messages if isinstance(messages, list) else []),
                {"role": "assistant", "content": text},
                {"role": "user", "content": reask_message(problems)},
            ],
        }

    async def parse(self, send: Send, payload: dict[str, Any]) -> Any:
        """The valid value of ``payload``'s answer (a model instance when the schema came
        from a pydantic model), or `StructuredOutputError`."""
        answer = await self.ask(send, payload)
        if answer.problems:
            raise StructuredOutputError(
                answer.error_message(),
                problems=answer.problems,
                response=answer.response,
                answers=answer.answers,
                attempts=answer.attempts,
            )
        model = self.schema.model
        if model is not None:
            return model.model_validate(answer.value)
        return answer.value


def describe(structured: Structured) -> str:
    """One line for a summary: the mode and the counts.

    >>> s = Structured({"type": "object"}, mode="tools")
    >>> describe(s)
    'schema mode tools: 0 valid first, 0 valid after re-asks, 0 invalid'
    """
    counts = structured.counts
    return (
        f"schema mode {structured.mode or 'auto (not chosen yet)'}: {counts.valid_first} valid "
        f"first, {counts.valid_reasked} valid after re-asks, {counts.invalid} invalid"
    )


def dumps_value(value: Any) -> str:
    """A valid value as compact JSON text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
