"""The web page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Sign in, add a connector against the scripted local server, test the connection, save,
and run a streamed prompt: the answer must appear piece by piece, then whole. Set
``OPENAI_COMPAT_SCREENSHOTS=DIR`` to save the screenshots (``make screenshots``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import CANARY, make_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROMPT = "Explain in one sentence what an API gateway does for a team of developers"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; "
            ".ci/run does it before `make test`)"
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def web_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    proc = AppProcess(tmp_path_factory.mktemp("web"))
    yield proc
    proc.stop()
    assert CANARY not in proc.log_text()


@pytest.fixture
def page(browser: Browser, web_app: AppProcess) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    # What the Content-Security-Policy blocked: Chromium reports each on the console.
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert blocked == [], f"the Content-Security-Policy blocked: {blocked}"
    outside = [url for url in requests if not url.startswith((web_app.url, "data:"))]
    assert outside == [], f"the page fetched something from outside the app: {outside}"


def _shot(page: Page, name: str) -> None:
    target = os.environ.get("OPENAI_COMPAT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def _sign_in(page: Page, app: AppProcess) -> None:
    page.goto(app.url + "/")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#token", app.token)
    _shot(page, "01-sign-in")
    page.fill("#token", "not-the-token")
    page.click("#signin-button")
    expect(page.locator("#signin-error")).to_contain_text("not valid")
    page.fill("#token", app.token)
    page.click("#signin-button")
    expect(page.locator("#app")).to_be_visible()


def test_add_check_save_and_stream_a_prompt(page: Page, web_app: AppProcess) -> None:
    with MockServer(api_key=CANARY) as server:
        _sign_in(page, web_app)
        page.click("#new-connector")
        # The form follows the spec: the guide's six fields first, in order, with titles and
        # defaults; then the advanced group, collapsed, in spec order.
        labels = page.locator("#spec-fields .field > label").all_text_contents()
        assert labels[:6] == [
            "Endpoint URL",
            "API Key",
            "Enable streaming",
            "HTTP Timeout",
            "Request Format",
            "Response Format",
        ]
        advanced = page.locator('#spec-fields details[data-group="advanced"]')
        expect(advanced.locator("> summary")).to_have_text("Advanced")
        assert advanced.evaluate("d => d.open") is False
        expect(page.locator("#field-advanced\\.headers")).to_be_hidden()
        assert labels[6:] == advanced.locator(".field > label").all_text_contents()
        assert labels[6:] == [
            "Extra headers",
            "Secret headers",
            "How the API key is sent",
            "API key header name",
            "CA bundle",
            "Verify TLS certificates",
            "Proxy URL",
            "Retries",
            "Total deadline",
        ]
        kinds = {
            name: page.eval_on_selector(
                f"#field-advanced\\.{name}", "e => e.tagName + ':' + (e.type || '')"
            )
            for name in ("headers", "secret_headers", "auth", "verify_tls", "proxy", "max_retries")
        }
        assert kinds == {
            "headers": "INPUT:text",
            "secret_headers": "INPUT:password",
            "auth": "SELECT:select-one",
            "verify_tls": "INPUT:checkbox",
            "proxy": "INPUT:password",
            "max_retries": "INPUT:number",
        }
        assert page.input_value("#field-advanced\\.auth") == "bearer"
        assert page.is_checked("#field-advanced\\.verify_tls")
        assert page.input_value("#field-url") == "https://api.openai.com/v1/chat/completions"
        assert page.get_attribute("#field-api_key", "type") == "password"
        assert "gpt-4o-mini" in page.input_value("#field-request_format")

        # The JSON editor shows where the JSON breaks.
        page.fill("#field-request_format", '{\n  "model": "mock-model",\n  "messages": [}\n}')
        status = page.locator('[data-json-status-for="field-request_format"]')
        expect(status).to_contain_text("Line 3, column")
        _shot(page, "02-json-error")

        page.fill("#field-name", "Local mock model")
        # The scripted server streams in small pieces, a few milliseconds apart.
        page.fill("#field-url", server.url + "?scenario=split&piece_delay_ms=4")
        page.fill("#field-api_key", CANARY)
        page.check("#field-is_stream")
        page.fill("#field-config\\.timeout", "20")
        request_format = {"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}
        page.fill("#field-request_format", json.dumps(request_format, indent=2))
        expect(status).to_have_text("✓ Valid JSON")
        advanced.locator("> summary").click()
        page.fill("#field-advanced\\.headers", '{"X-Team": "web"}')
        page.fill("#field-advanced\\.secret_headers", json.dumps({"X-Gateway-Key": CANARY}))
        _shot(page, "05-advanced-options")

        page.click("#test-connection")
        expect(page.locator("#check-result")).to_have_text("✓ Connection succeeded.", timeout=20000)
        _shot(page, "03-connection-succeeded")
        page.click("#save")
        expect(page.locator("#save-result")).to_have_text("✓ Saved.")
        expect(page.locator("#connector-list")).to_contain_text("Local mock model")
        # The saved key and secret header are never sent back to the page.
        assert page.input_value("#field-api_key") == ""
        assert page.input_value("#field-advanced\\.secret_headers") == ""
        assert "leave empty to keep" in (
            page.get_attribute("#field-advanced\\.secret_headers", "placeholder") or ""
        )
        assert CANARY not in page.content()
        # Only what was set in the advanced section was saved (no empty or default values).
        saved = httpx.get(
            web_app.url + "/api/v1/connectors",
            headers={"Authorization": f"Bearer {web_app.token}"},
        ).json()["data"][-1]
        assert saved["configuration"]["advanced"] == {
            "headers": '{"X-Team": "web"}',
            "secret_headers": "********",
        }
        # Testing the saved connector with the key field left empty uses the stored key.
        page.click("#test-connection")
        expect(page.locator("#check-result")).to_have_text("✓ Connection succeeded.", timeout=20000)

        page.click('.tab[data-tab="playground"]')
        page.locator("#pg-messages textarea").first.fill(PROMPT)
        page.click("#pg-send")
        expected = f"You said: {PROMPT}"
        # Part of the answer is on screen before the whole of it.
        page.wait_for_function(
            """(full) => { const t = document.querySelector('#pg-answer').textContent;
                           return t.length > 0 && t.length < full.length; }""",
            arg=expected,
            timeout=20000,
        )
        expect(page.locator("#pg-answer")).to_have_text(expected, timeout=20000)
        expect(page.locator("#pg-status")).to_contain_text("Done in")
        assert int(page.inner_text("#pg-count")) > 3
        assert '"chat.completion.chunk"' in page.inner_text("#pg-records")
        page.click("details:has(#pg-assembled) > summary")
        assert (
            json.loads(page.inner_text("#pg-assembled"))["choices"][0]["message"]["content"]
            == expected
        )
        _shot(page, "04-playground-streamed")
        assert all(r.headers.get("authorization") == f"Bearer {CANARY}" for r in server.requests)
        # The headers of the advanced section went with every request, the secret one kept.
        assert all(r.headers.get("x-team") == "web" for r in server.requests)
        assert all(r.headers.get("x-gateway-key") == CANARY for r in server.requests)


def test_save_errors_show_next_to_the_fields(page: Page, web_app: AppProcess) -> None:
    _sign_in(page, web_app)
    page.click("#new-connector")
    page.fill("#field-url", "http://169.254.169.254/v1/chat/completions")
    page.fill("#field-config\\.timeout", "soon")
    page.locator('details[data-group="advanced"] > summary').click()
    page.fill("#field-advanced\\.deadline", "later")
    page.locator('details[data-group="advanced"] > summary').click()
    page.click("#save")
    expect(page.locator('[data-error-for="name"]')).to_contain_text("is required")
    expect(page.locator('[data-error-for="url"]')).to_contain_text("link-local")
    expect(page.locator('[data-error-for="config.timeout"]')).to_contain_text("number of seconds")
    # An error in the collapsed advanced section opens it.
    expect(page.locator('[data-error-for="advanced.deadline"]')).to_contain_text("seconds")
    expect(page.locator('[data-error-for="advanced.deadline"]')).to_be_visible()
    expect(page.locator("#save-result")).to_contain_text("Not saved")


def test_api_docs_load_from_the_app_with_the_page_sign_in(page: Page, web_app: AppProcess) -> None:
    page.goto(web_app.url + "/docs")
    # Not signed in: the OpenAPI document is refused (it needs the token).
    expect(page.locator("#swagger-ui")).to_contain_text("Unauthorized", timeout=15000)
    _sign_in(page, web_app)
    page.click("text=API docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("openai-compat", timeout=15000)
    expect(page.locator("#swagger-ui")).to_contain_text(
        "/api/v1/connectors/{connector_id}/execute_model"
    )


def test_a_saved_connector_shows_its_capabilities(page: Page, web_app: AppProcess) -> None:
    with MockServer(api_key=CANARY) as server:
        config = make_config(server.url + "?scenario=structured&refuse=tools")
        created = httpx.post(
            web_app.url + "/api/v1/connectors",
            headers={"Authorization": f"Bearer {web_app.token}"},
            json={"name": "Probed server", "configuration": config},
        )
        assert created.status_code == 201, created.text
        _sign_in(page, web_app)
        # A new connector has nothing to measure yet.
        page.click("#new-connector")
        expect(page.locator("#measure-capabilities")).to_be_hidden()
        page.locator("#connector-list").get_by_text("Probed server").click()
        expect(page.locator("#field-name")).to_have_value("Probed server")
        page.click("#measure-capabilities")
        table = page.locator("#capabilities-table")
        expect(table.locator('tr[data-capability="json_schema"] td')).to_have_text(
            "enforced", timeout=20000
        )
        expect(table.locator('tr[data-capability="tools"] td')).to_have_text("refused")
        # The models GET goes through the application's guarded client too, with the key.
        expect(table.locator('tr[data-capability="models"] td')).to_have_text("mock-model")
        expect(page.locator("#capabilities-measured-at")).not_to_be_empty()
        _shot(page, "06-capabilities")
        assert CANARY not in page.content()
        probes = [r for r in server.requests if r.method == "POST"]
        assert probes and all(r.headers.get("authorization") == f"Bearer {CANARY}" for r in probes)
        [listed] = [r for r in server.requests if r.method == "GET"]
        assert listed.path == "/v1/models"
        assert listed.headers.get("authorization") == f"Bearer {CANARY}"
        # Stored on the connector: opened again, the page shows the record without
        # measuring again.
        sent = len(server.requests)
        page.click("#new-connector")
        expect(page.locator("#capabilities")).to_be_hidden()
        page.locator("#connector-list").get_by_text("Probed server").click()
        expect(table.locator('tr[data-capability="json_schema"] td')).to_have_text("enforced")
        expect(page.locator("#capabilities-measured-at")).to_have_attribute(
            "datetime", re.compile(r"^\d{4}-\d\d-\d\dT")
        )
        assert len(server.requests) == sent
