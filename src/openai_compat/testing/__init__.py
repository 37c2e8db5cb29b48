"""A scripted OpenAI-compatible server (chat completions, embeddings, completions, Responses)
for tests, benchmarks and demos.

```python
from openai_compat.testing import MockServer, sse_reply, chat_chunks

with MockServer() as srv:
    srv.enqueue(sse_reply(chat_chunks("Hi"), split_at=[7, 30]))
    ...  # POST to srv.url
    assert srv.requests[0].json["model"] == "m"
```

With nothing queued the server answers like an OpenAI-compatible endpoint; ``?scenario=NAME``
on the URL selects error and streaming edge cases (listed in `openai_compat.testing._app`).
"""

from ._app import RecordedRequest
from ._dialects import (
    completion_chunks,
    embedding_vector,
    embeddings_answer,
    encode_typed_sse,
    response_events,
    response_object,
    responses_sse_reply,
    text_completion,
)
from ._limits import ProviderLimits, Slots
from ._replies import (
    Reply,
    chat_chunks,
    chat_completion,
    error_reply,
    html_reply,
    json_reply,
    raw_reply,
    sse_reply,
)
from ._server import MockServer, serve_forever

__all__ = [
    "MockServer",
    "ProviderLimits",
    "RecordedRequest",
    "Reply",
    "Slots",
    "chat_chunks",
    "chat_completion",
    "completion_chunks",
    "embedding_vector",
    "embeddings_answer",
    "encode_typed_sse",
    "error_reply",
    "html_reply",
    "json_reply",
    "raw_reply",
    "response_events",
    "response_object",
    "responses_sse_reply",
    "serve_forever",
    "sse_reply",
    "text_completion",
]
