"""The Runs tab in a real headless Chromium (as tests/app/test_app_browser.py).

Save a connector against the scripted server, then in its Runs tab: map a query's columns
(the preview and a row's mapping error), upload a CSV, map a column, run it, watch the bar
reach 100%, see a failed row's error, filter to the failed rows, download the results.
``OPENAI_COMPAT_SCREENSHOTS=DIR`` saves the screenshots (``make screenshots``).
"""

# The browser fixtures are those of the page test, imported: pytest passes them by name.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from openai_compat.testing import MockServer
from tests.app.test_app_browser import _shot, _sign_in, browser, page, web_app  # noqa: F401
from tests.app_support import AppProcess
from tests.conftest import CANARY

REQUEST_FORMAT = {
    "model": "mock-model",
    "messages": [{"role": "user", "content": "Summarise this ticket: {{ticket}}"}],
}
RESPONSE_FORMAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "mock-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
ROWS = 120
BAD_ROW = 7  # its model is empty: the scripted server answers 400 for it


def _shot_of(page: Page, selector: str, name: str) -> None:
    """A screenshot of one part of the page (``_shot`` takes the whole page)."""
    target = os.environ.get("OPENAI_COMPAT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.locator(selector).screenshot(path=str(Path(target) / f"{name}.png"))


def _save_connector(app: AppProcess, url: str, name: str) -> int:
    config = {
        "url": url,
        "api_key": CANARY,
        "request_format": json.dumps(REQUEST_FORMAT),
        "response_format": json.dumps(RESPONSE_FORMAT),
    }
    with app.client() as client:
        response = client.post("/api/v1/connectors", json={"name": name, "configuration": config})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _open_runs(page: Page, app: AppProcess, name: str) -> None:
    _sign_in(page, app)
    page.locator("#connector-list button", has_text=name).click()
    page.click('.tab[data-tab="runs"]')
    expect(page.locator("#runs")).to_be_visible()


def _add_mapping_row(page: Page, name: str, column: str, type_: str = "string") -> None:
    page.click("#run-add-mapping")
    row = page.locator("#run-mapping tbody tr").last
    row.locator("td:nth-child(1) input").fill(name)
    row.locator("td:nth-child(4) select").select_option(type_)
    value = row.locator(".value-cell select, .value-cell input")
    if value.evaluate("e => e.tagName") == "SELECT":
        value.select_option(column)
    else:
        value.fill(column)


def test_mapping_editor_previews_the_payload_and_names_a_bad_row(
    page: Page, web_app: AppProcess, tmp_path: Path
) -> None:
    _save_connector(web_app, "http://127.0.0.1:9/v1/chat/completions", "Mapping only")
    _open_runs(page, web_app, "Mapping only")
    # The request format's placeholder has its picker, waiting for a column.
    expect(page.locator("#run-placeholders code")).to_have_text("{{ticket}}")
    # A file that is not rows: the upload's own error, said on the page.
    bad = tmp_path / "notes.docx"
    bad.write_bytes(b"PK\x03\x04 not rows")
    page.set_input_files("#run-file", str(bad))
    expect(page.locator("#run-input-error")).to_be_visible(timeout=20000)
    expect(page.locator("#run-input-error")).to_contain_text("notes.docx")
    expect(page.locator("#run-input-error")).to_contain_text(".csv")
    # Dropped on the drop zone, as a person drags a file from their desktop.
    page.eval_on_selector(
        "#run-drop",
        """(zone, text) => { const data = new DataTransfer();
             data.items.add(new File([text], "notes.csv", { type: "text/csv" }));
             zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true,
                                                        cancelable: true })); }""",
        "id,body,n\nn-1,the lift is stuck,lots\nn-2,no coffee,3\n",
    )
    expect(page.locator("#run-sample tbody tr")).to_have_count(2)
    picker = page.locator("#run-placeholders select")
    expect(picker.locator("option")).to_have_count(4)  # "choose" + three columns
    expect(page.locator("#run-preview-error")).to_contain_text("no column 'ticket'")
    picker.select_option("body")
    preview = page.locator("#run-preview")
    expect(preview).to_contain_text("Summarise this ticket: the lift is stuck")
    expect(page.locator("#run-preview-error")).to_be_hidden()
    _add_mapping_row(page, "max_tokens", "n", "number")
    # "lots" is not a number: the first row's error, from the real mapping package.
    expect(page.locator("#run-preview-error")).to_contain_text("cannot cast column 'n' to number")
    page.locator("#run-mapping tbody tr").last.locator("td:nth-child(4) select").select_option("")
    expect(page.locator("#run-preview-error")).to_be_hidden()
    payload = json.loads(preview.inner_text())
    assert payload == {
        "model": "mock-model",
        "messages": [{"role": "user", "content": "Summarise this ticket: the lift is stuck"}],
        "max_tokens": "lots",
    }
    # A path that runs into a string is the mapping's own problem, marked on its row.
    _add_mapping_row(page, "model.name", "id")
    expect(page.locator("#run-preview-error")).to_contain_text("model is a string")
    expect(page.locator("#run-mapping tbody tr.invalid")).to_have_count(1)
    page.locator("#run-mapping tbody tr").last.locator(".remove-btn").click()
    expect(page.locator("#run-preview-error")).to_be_hidden()
    # The outputs picker lists the response format's leaves; the answer's text is picked.
    paths = page.locator("#run-outputs tbody tr code").all_text_contents()
    assert "choices.0.message.content" in paths
    assert "usage.total_tokens" in paths
    kept = page.locator("#run-outputs tbody tr:has(input:checked) code").all_text_contents()
    assert kept == ["choices.0.message.content"]
    page.fill("#run-custom-path", "choices.0.message.tool_calls.0.function.arguments")
    page.click("#run-add-output")
    custom = page.locator("#run-outputs tbody tr").last
    expect(custom.locator("code")).to_have_text("choices.0.message.tool_calls.0.function.arguments")
    expect(custom.locator("input").first).to_be_checked()
    # A path already listed is kept, not listed twice.
    page.fill("#run-custom-path", "usage.total_tokens")
    page.click("#run-add-output")
    assert (
        page.locator("#run-outputs tbody tr code").all_text_contents().count("usage.total_tokens")
        == 1
    )
    expect(
        page.locator('#run-outputs tr[data-path="usage.total_tokens"] input').first
    ).to_be_checked()
    _shot(page, "06-runs-mapping")
    # The database URL is a password field: its secret is not shown.
    page.click("#run-src-db")
    assert page.get_attribute("#run-db-url", "type") == "password"
    # Every control of the tab has an accessible name (a label or an aria-label).
    unnamed = page.eval_on_selector_all(
        "#runs input, #runs select, #runs textarea, #runs button",
        """els => els.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                  && !e.textContent.trim()).map(e => e.outerHTML.slice(0, 80))""",
    )
    assert unnamed == []


def _write_csv(path: Path) -> Path:
    lines = ["id,ticket,model"]
    for i in range(ROWS):
        model = "" if i == BAD_ROW else "mock-model"
        lines.append(f"t-{i},the printer on floor {i} is jammed,{model}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_upload_map_run_watch_and_download(page: Page, web_app: AppProcess, tmp_path: Path) -> None:
    with MockServer(api_key=CANARY) as server:
        _save_connector(web_app, server.url + "?latency_ms=80", "Batch target")
        _open_runs(page, web_app, "Batch target")
        # The picker offers what the server reads (its one table of input formats).
        with web_app.client() as client:
            offered = client.get("/api/v1/input_formats").json()["accept"]
        expect(page.locator("#run-file")).to_have_attribute("accept", offered)
        page.set_input_files("#run-file", str(_write_csv(tmp_path / "tickets.csv")))
        expect(page.locator("#run-upload-status")).to_contain_text("tickets.csv", timeout=20000)
        # Its columns and first rows.
        expect(page.locator("#run-sample thead th")).to_have_text(["id", "ticket", "model"])
        expect(page.locator("#run-sample tbody tr").first).to_contain_text("t-0")
        # The placeholder found its column by name; the model comes from a column too.
        assert page.input_value("#run-placeholders select") == "ticket"
        _add_mapping_row(page, "model", "model")
        expect(page.locator("#run-preview")).to_contain_text(
            "Summarise this ticket: the printer on floor 0 is jammed"
        )
        assert page.input_value("#run-key") == "id"
        page.fill("#run-concurrency", "4")
        # Every problem of the run is listed before anything runs.
        page.fill("#run-rate", "quickly")
        page.click("#run-start")
        expect(page.locator("#run-start-error")).to_contain_text("The run was not started")
        expect(page.locator("#run-start-error")).to_contain_text("rate:")
        expect(page.locator("#run-view")).to_be_hidden()
        page.fill("#run-rate", "off")
        expect(page.locator("#run-start-error")).to_be_hidden()
        page.fill("#run-prices", "input=1000,output=2000")
        _shot(page, "07-runs-ready")
        page.click("#run-start")
        expect(page.locator("#run-view")).to_be_visible(timeout=20000)
        # The bar moves: part of the rows done before all of them, and the table follows.
        page.wait_for_function(
            """(total) => { const b = document.querySelector('#run-progress');
                            return b.max === total && b.value > total * 0.4 && b.value < total; }""",
            arg=ROWS,
            timeout=30000,
        )
        expect(page.locator("#run-results tbody tr").first).to_be_visible()
        _shot_of(page, "#run-view", "08-runs-progress")
        expect(page.locator("#run-progress-label")).to_contain_text("100%", timeout=60000)
        # The run went through (one of its rows failed, not the run).
        expect(page.locator("#run-status")).to_have_text("succeeded", timeout=20000)
        figures = dict(
            zip(
                page.locator("#run-figures dt").all_text_contents(),
                page.locator("#run-figures dd").all_text_contents(),
                strict=True,
            )
        )
        assert figures["OK"] == str(ROWS - 1)
        assert figures["Failed"] == "1"
        # With prices, the run's cost (from the rows' usage) is among its figures.
        assert float(figures["Cost"].replace(",", "")) > 0
        # The charts were drawn from the events: rows per second, and three percentiles.
        assert page.locator("#run-chart-rate polyline").count() == 1
        assert page.locator("#run-chart-rate circle").count() >= 2
        assert page.locator("#run-chart-latency polyline").count() == 3
        assert "latest p50" in (page.get_attribute("#run-chart-latency", "aria-label") or "")
        # The failed row, marked with its error; then only the failed rows.
        failed = page.locator("#run-results tbody tr.failed")
        page.check("#run-only-failed")
        expect(page.locator("#run-results tbody tr")).to_have_count(1)
        expect(failed).to_contain_text(f"t-{BAD_ROW}")
        expect(failed).to_contain_text("HTTP 400")
        _shot_of(page, "#run-view", "09-runs-done")
        with page.expect_download() as info:
            page.click("#run-dl-jsonl")
        lines = [json.loads(x) for x in Path(info.value.path()).read_text().splitlines()]
        assert len(lines) == ROWS
        assert {line["key"] for line in lines} == {f"t-{i}" for i in range(ROWS)}
        bad = next(line for line in lines if line["key"] == f"t-{BAD_ROW}")
        assert bad["error"]["status"] == 400
        good = next(line for line in lines if line["key"] == "t-0")
        assert good["output"]["choices.0.message.content"] == (
            "You said: Summarise this ticket: the printer on floor 0 is jammed"
        )
        with page.expect_download() as info:
            page.click("#run-dl-csv")
        assert info.value.suggested_filename.endswith(".csv")
        assert len(Path(info.value.path()).read_text().strip().splitlines()) == ROWS + 1
        # The past runs list has it, with its figures.
        history = page.locator("#run-history tbody tr")
        expect(history).to_have_count(1)
        expect(history.first).to_contain_text("succeeded")
        expect(history.first).to_contain_text(f"{ROWS} / {ROWS}")
        # Retry the failed row: one request more, the run ends again with the same figures.
        sent = len(server.requests)
        expect(page.locator("#run-resume")).to_be_hidden()
        page.click("#run-retry")
        deadline = time.monotonic() + 30
        while len(server.requests) == sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.requests) == sent + 1
        expect(page.locator("#run-status")).to_have_text("succeeded", timeout=30000)
        expect(page.locator("#run-progress-label")).to_contain_text(f"100% · {ROWS} of {ROWS}")
        expect(page.locator("#run-results tbody tr.failed")).to_have_count(1)
        assert len(server.requests) == sent + 1
        assert CANARY not in page.content()
    with web_app.client() as client:
        runs = client.get("/api/v1/runs").json()
    assert CANARY not in json.dumps(runs)
    assert httpx.get(web_app.url + "/health").status_code == 200


def test_cancel_then_resume_a_run(page: Page, web_app: AppProcess, tmp_path: Path) -> None:
    rows = 16
    with MockServer(api_key=CANARY) as server:
        _save_connector(web_app, server.url + "?latency_ms=300", "Slow target")
        _open_runs(page, web_app, "Slow target")
        csv = tmp_path / "slow.csv"
        csv.write_text("id,ticket\n" + "".join(f"s-{i},ticket {i}\n" for i in range(rows)))
        page.set_input_files("#run-file", str(csv))
        expect(page.locator("#run-upload-status")).to_contain_text("slow.csv", timeout=20000)
        page.fill("#run-concurrency", "1")
        page.fill("#run-rate", "off")
        page.click("#run-start")
        page.wait_for_function(
            "() => document.querySelector('#run-progress').value >= 2", timeout=30000
        )
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#run-cancel")
        expect(page.locator("#run-status")).to_have_text("cancelled", timeout=20000)
        expect(page.locator("#run-cancel")).to_be_hidden()
        stopped_at = page.eval_on_selector("#run-progress", "b => b.value")
        assert 2 <= stopped_at < rows
        page.click("#run-resume")
        expect(page.locator("#run-status")).to_have_text("succeeded", timeout=60000)
        expect(page.locator("#run-progress-label")).to_contain_text("100%")
        with page.expect_download() as info:
            page.click("#run-dl-jsonl")
        keys = [json.loads(x)["key"] for x in Path(info.value.path()).read_text().splitlines()]
        # Every row exactly once, across the cancel and the resume.
        assert sorted(keys) == sorted(f"s-{i}" for i in range(rows))
        assert all(
            line["error"] is None
            for line in map(json.loads, Path(info.value.path()).read_text().splitlines())
        )
        # The upload goes with its last run: the form then asks for the file again.
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#run-delete")
        expect(page.locator("#run-view")).to_be_hidden(timeout=20000)
        expect(page.locator("#run-upload-status")).to_contain_text("upload it again")
        expect(page.locator("#run-sample tbody tr")).to_have_count(0)


def test_a_database_query_looked_at_then_run(
    page: Page, web_app: AppProcess, postgres: Any
) -> None:
    import psycopg

    url = postgres.create_database("runs_page_rows")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table tickets (id text primary key, ticket text, day text)")
        for i in range(12):
            day = "mon" if i % 3 else "tue"
            conn.execute("insert into tickets values (%s, %s, %s)", (f"q-{i}", f"ticket {i}", day))
    # The cluster trusts local connections: the password is never checked, only carried.
    with_password = url.replace("postgres@", f"postgres:{CANARY}@")
    with MockServer(api_key=CANARY) as server:
        _save_connector(web_app, server.url, "Query target")
        _open_runs(page, web_app, "Query target")
        page.click("#run-src-db")
        page.fill("#run-db-url", with_password)
        page.fill("#run-db-query", "select id, ticket from tickets where day = :day order by id")
        page.fill("#run-db-params", "{day: mon}")
        page.click("#run-db-look")
        expect(page.locator("#run-input-error")).to_contain_text("JSON object")
        page.fill("#run-db-params", '{"day": "mon"}')
        page.click("#run-db-look")
        expect(page.locator("#run-sample thead th")).to_have_text(["id", "ticket"])
        expect(page.locator("#run-sample tbody tr").first).to_contain_text("q-1")
        assert page.input_value("#run-placeholders select") == "ticket"
        expect(page.locator("#run-preview")).to_contain_text("Summarise this ticket: ticket 1")
        assert page.input_value("#run-key") == "id"
        page.click("#run-start")
        expect(page.locator("#run-status")).to_have_text("succeeded", timeout=60000)
        expect(page.locator("#run-progress-label")).to_contain_text("100% · 8 of 8 rows")
        expect(page.locator("#run-results tbody tr")).to_have_count(8)
        assert CANARY not in page.content()
