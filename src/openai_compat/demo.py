"""``make run`` before the application exists: one streamed answer, end to end, offline.

Starts the bundled scripted server on 127.0.0.1, checks the connection, and streams one
answer through the connector, printing the protocol messages and the assembled text.
"""

from __future__ import annotations

import json
import sys

from .connector import OpenAICompatibleConnector
from .testing import MockServer


def main() -> int:
    """Run the demo; returns the process exit code."""
    with MockServer() as server:
        config = {
            "url": server.url,
            "api_key": "",
            "is_stream": True,
            "config": {"timeout": "30"},
            "request_format": json.dumps(
                {"model": "mock-model", "messages": [{"role": "user", "content": "Hello"}]}
            ),
            "response_format": '{"choices": [{"message": {"content": "..."}}]}',
        }
        connector = OpenAICompatibleConnector()
        print(f"# bundled OpenAI-compatible server at {server.url}", file=sys.stderr)
        print(connector.check_connection(config).to_json())
        payload = {
            "model": "mock-model",
            "messages": [{"role": "user", "content": "What do you know about APIs?"}],
        }
        last = None
        for message in connector.run_model(config, payload, assemble=True):
            print(message.to_json())
            last = message
        if last is None or last.record is None:
            return 1
        answer = last.record.data["choices"][0]["message"]["content"]
        print(f"# assembled answer: {answer}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
