"""The run form's JSON Schema box, in a real browser: the columns it will produce, a schema
that is not JSON refused before anything is sent, and a run whose outputs are the schema's."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from openai_compat.testing import MockServer
from tests.app.test_app_browser import _shot, _sign_in, browser, page, web_app  # noqa: F401
from tests.app_support import AppProcess
from tests.conftest import CANARY

SCHEMA = {
    "type": "object",
    "properties": {"label": {"enum": ["bug", "question"]}, "urgency": {"type": "integer"}},
    "required": ["label", "urgency"],
}


def test_the_schema_box_shows_columns_and_the_run_uses_it(
    page: Page,  # noqa: F811
    web_app: AppProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    with MockServer(api_key=CANARY) as server:
        config = {
            "url": server.url + "?scenario=structured",
            "api_key": CANARY,
            "request_format": json.dumps(
                {"model": "mock-model", "messages": [{"role": "user", "content": "{{ticket}}"}]}
            ),
            "response_format": json.dumps({"choices": [{"message": {"content": "{}"}}]}),
        }
        with web_app.client() as client:
            created = client.post(
                "/api/v1/connectors", json={"name": "Typed", "configuration": config}
            )
        assert created.status_code == 201, created.text
        _sign_in(page, web_app)
        page.locator("#connector-list button", has_text="Typed").click()
        page.click('.tab[data-tab="runs"]')
        rows = tmp_path / "tickets.csv"
        rows.write_text("id,ticket\n" + "".join(f"t-{i},printer {i}\n" for i in range(6)))
        page.set_input_files("#run-file", str(rows))
        expect(page.locator("#run-upload-status")).to_contain_text("tickets.csv", timeout=20000)
        page.fill("#run-rate", "off")
        page.fill("#run-schema", "{not json")
        expect(page.locator("#run-schema-columns")).to_have_text("Not JSON yet.")
        page.click("#run-start")
        expect(page.locator("#run-start-error")).to_contain_text("The JSON Schema is not JSON")
        assert server.requests == []
        page.fill("#run-schema", json.dumps(SCHEMA))
        expect(page.locator("#run-schema-columns")).to_have_text("Columns: label, urgency")
        _shot(page, "10-runs-schema")
        page.click("#run-start")
        expect(page.locator("#run-view")).to_be_visible(timeout=20000)
        expect(page.locator("#run-status")).to_have_text("succeeded", timeout=60000)
        # The run's figures count its rows by how their answer validated.
        figures = page.locator("#run-figures")
        expect(figures.locator(".figure", has_text="Schema mode")).to_contain_text("json_schema")
        expect(figures.locator(".figure", has_text="Valid first")).to_contain_text("6")
        expect(figures.locator(".figure", has_text="Valid after re-asks")).to_contain_text("0")
        expect(figures.locator(".figure", has_text="Invalid")).to_contain_text("0")
        with web_app.client() as client:
            runs = client.get("/api/v1/runs").json()["data"]
        latest = max(runs, key=lambda run: run["id"])
        assert latest["schema"] == SCHEMA and latest["output_names"] == ["label", "urgency"]
        assert latest["ok"] == 6
        assert latest["structured"] == {
            "mode": "json_schema",
            "valid_first": 6,
            "valid_after_reasks": 0,
            "invalid": 0,
        }
        assert all("response_format" in r.json for r in server.requests)
