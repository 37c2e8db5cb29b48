"""The OpenAI API dialects: one module per API, behind one small interface (`Dialect`).

Pure rules about shapes (no I/O): the request path asks the dialect of a configuration
whether a stream finished and how its chunks assemble; cost, budgets, summaries, metrics and
every engine read token counts through one `Usage`.

>>> dialect_for("http://127.0.0.1:8000/v1/chat/completions").name
'chat'
"""

from __future__ import annotations

from ._base import Assembler, Dialect
from ._chat import CHAT, ChatDialect, ChunkAssembler
from ._usage import Usage

__all__ = ["CHAT", "Assembler", "ChatDialect", "ChunkAssembler", "Dialect", "Usage", "dialect_for"]


def dialect_for(url: str) -> Dialect:
    """The dialect of the API ``url`` names (chat completions: the one dialect so far)."""
    return CHAT
