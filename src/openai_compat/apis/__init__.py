"""The OpenAI API dialects: one module per API, behind one small interface (`Dialect`).

Pure rules about shapes (no I/O): the request path asks the dialect of a configuration
whether a stream finished and how its chunks assemble; cost, budgets, summaries, metrics and
every engine read token counts through one `Usage`. The dialect follows the URL's path, or
the configuration's ``api`` for servers with unusual paths.

>>> dialect_for("http://127.0.0.1:8000/v1/chat/completions").name
'chat'
>>> dialect_for("http://127.0.0.1:8000/v1/embeddings").name
'embeddings'
>>> dialect_for("http://127.0.0.1:8000/v1/whatever", "responses").name
'responses'
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._base import Assembler, Dialect
from ._chat import CHAT, ChatDialect, ChunkAssembler
from ._check_request import check_request, request_field
from ._completions import COMPLETIONS, CompletionsDialect, TextAssembler
from ._embeddings import EMBEDDINGS, EmbeddingsDialect, decode_embedding
from ._responses import RESPONSES, EventAssembler, ResponsesDialect, output_text
from ._usage import Usage

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "DIALECTS",
    "EMBEDDINGS",
    "RESPONSES",
    "Assembler",
    "ChatDialect",
    "ChunkAssembler",
    "CompletionsDialect",
    "Dialect",
    "EmbeddingsDialect",
    "EventAssembler",
    "ResponsesDialect",
    "TextAssembler",
    "Usage",
    "check_request",
    "decode_embedding",
    "dialect_for",
    "dialect_named",
    "output_text",
    "request_field",
]

#: Every dialect by its name in configurations (``"api"``).
DIALECTS: dict[str, Dialect] = {d.name: d for d in (CHAT, EMBEDDINGS, COMPLETIONS, RESPONSES)}
# Longest path first: "/chat/completions" before "/completions".
_BY_PATH = sorted(DIALECTS.values(), key=lambda d: -len(d.path))


def dialect_named(name: str) -> Dialect:
    """The dialect called ``name``; ValueError naming the choices for another name."""
    dialect = DIALECTS.get(name)
    if dialect is None:
        raise ValueError(
            f'is "{name}", not an API the connector speaks; use one of: '
            + ", ".join(f'"{n}"' for n in DIALECTS)
        )
    return dialect


def dialect_for(url: str, api: str | None = None) -> Dialect:
    """The dialect of the API ``url`` names (``api``, when given, wins); chat when the path
    names none of them."""
    if api is not None:
        return dialect_named(api)
    try:
        path = urlsplit(url).path.rstrip("/")
    except ValueError:
        return CHAT
    for dialect in _BY_PATH:
        if path.endswith(dialect.path):
            return dialect
    return CHAT
