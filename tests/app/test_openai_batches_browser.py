"""The web page lists the Batch API's batches beside the runs (a real headless Chromium)."""

# The browser fixtures are those of the page test, imported: pytest passes them by name.
# ruff: noqa: F811

from __future__ import annotations

import json
import time

from openai import OpenAI
from playwright.sync_api import Page, expect

from openai_compat.testing import MockServer
from tests.app.test_app_browser import _sign_in, browser, page, web_app  # noqa: F401
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config


def test_the_runs_tab_lists_the_batches(page: Page, web_app: AppProcess) -> None:
    with MockServer() as server:
        request = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
        config = make_config(server.url, request_format=request)
        with web_app.client() as client:
            saved = client.post(
                "/api/v1/connectors", json={"name": "Batches", "configuration": config}
            )
        assert saved.status_code == 201, saved.text
        sdk = OpenAI(base_url=f"{web_app.url}/v1", api_key=web_app.token, max_retries=0)
        line = {
            "custom_id": "w-1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "hello"}]},
        }
        uploaded = sdk.files.create(file=("w.jsonl", json.dumps(line).encode()), purpose="batch")
        batch = sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"connector": "Batches"},
        )
        deadline = time.monotonic() + 30
        while sdk.batches.retrieve(batch.id).status != "completed":
            assert time.monotonic() < deadline, "the batch did not complete"
            time.sleep(0.1)
        _sign_in(page, web_app)
        page.locator("#connector-list button", has_text="Batches").click()
        page.click('.tab[data-tab="runs"]')
        row = page.locator("#batch-history tbody tr", has_text=batch.id)
        expect(row).to_have_count(1, timeout=20000)
        expect(row).to_contain_text("completed")
        assert CANARY not in page.content()
