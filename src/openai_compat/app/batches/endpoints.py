"""The endpoints a batch may name: one table, built from the API dialects.

OpenAI's ``endpoint`` of a batch is the path every line's ``url`` names (``/v1/chat/
completions``). A batch runs on a connector whose URL speaks that endpoint's dialect; each
dialect the package knows is one entry here, so an API added to `openai_compat.apis` is
added to the batches by one line of `_DIALECTS`.

>>> sorted(BATCH_ENDPOINTS)
['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses']
>>> endpoint_dialect("/v1/chat/completions").name
'chat'
>>> endpoint_dialect("/v1/moderations") is None
True
"""

from __future__ import annotations

from ...apis import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, Dialect

__all__ = ["BATCH_ENDPOINTS", "endpoint_dialect", "endpoint_of"]

# Every dialect a batch may run: its endpoint is ``/v1`` and the dialect's path.
_DIALECTS: tuple[Dialect, ...] = (CHAT, EMBEDDINGS, COMPLETIONS, RESPONSES)

BATCH_ENDPOINTS: dict[str, Dialect] = {f"/v1{dialect.path}": dialect for dialect in _DIALECTS}
"""The endpoints a batch may name, each with its dialect."""


def endpoint_dialect(endpoint: str) -> Dialect | None:
    """The dialect of a batch ``endpoint``, or None when no batch may name it."""
    return BATCH_ENDPOINTS.get(endpoint)


def endpoint_of(dialect: Dialect) -> str:
    """The batch endpoint of ``dialect`` (a connector's: the lines it can run).

    >>> endpoint_of(CHAT)
    '/v1/chat/completions'
    """
    return f"/v1{dialect.path}"
