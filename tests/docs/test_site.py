"""The README stays short and the site stays whole: its pages, its generated references."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from openai_compat.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").split("\n")
    assert len(lines) <= 150
    fence = lines.index("```sh")
    commands = lines[fence + 1 : lines.index("```", fence)]
    assert [c.split("#")[0].strip() for c in commands] == ["make run", "make test"]
    # Nothing but the title and the block's marker before them.
    before = [x for x in lines[:fence] if x.strip()]
    assert before[0] == "# openai-compat" and len(before) <= 2


def test_the_readme_holds_no_benchmark_figures() -> None:
    text = README.read_text(encoding="utf-8")
    for figure in ("chunks/s", "rows/s  ", "p99", "load average", "[PASS]", "x ideal"):
        assert figure not in text, figure


def test_the_readme_links_only_to_files_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)", text)
    assert "docs/compat.md" in targets
    assert [t for t in targets if not (ROOT / t).exists()] == []


def _nav_pages(nav: list[Any]) -> list[str]:
    pages: list[str] = []
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == on_disk


def test_the_cli_reference_names_every_command_and_option() -> None:
    reference = _tool("docs_hooks").cli_reference()
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "command"]
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        assert f"## `openai-compat {name}`" in reference
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}`" in reference, (name, option)


def test_the_http_reference_names_every_operation() -> None:
    hooks = _tool("docs_hooks")
    document = hooks.openapi_document()
    reference = hooks.openapi_reference(document)
    operations = [(m, p) for p, ops in document["paths"].items() for m in ops]
    assert len(operations) > 20
    for method, path in operations:
        assert f"### `{method.upper()} {path}`" in reference
    for name in document["components"]["schemas"]:
        assert f"### {name}\n" in reference


def test_doctest_runs_become_code_blocks() -> None:
    fence = _tool("griffe_doctests").fence_doctests
    text = "Adds.\n\n>>> [1 + 1]\n[2]\n\nDone.\n\n```python\n>>> kept\n```"
    assert fence(text) == (
        "Adds.\n\n```pycon\n>>> [1 + 1]\n[2]\n```\n\nDone.\n\n```python\n>>> kept\n```"
    )


def test_the_compatibility_table_is_written_into_its_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = _tool("compat_table")
    page = tmp_path / "compat.md"
    page.write_text((DOCS / "compat.md").read_text(encoding="utf-8"), encoding="utf-8")
    results = {
        "servers": {"llama": {"name": "llama.cpp llama-server", "version": "b1"}},
        "cells": [
            {"server": "llama", "cell": "check", "outcome": "passed"},
            {"server": "llama", "cell": "stream", "outcome": "failed", "note": "cut off"},
        ],
    }
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["compat_table.py", str(tmp_path / "results.json"), str(page)])
    tool.main()
    text = page.read_text(encoding="utf-8")
    table = text.split(tool.START)[1].split(tool.END)[0]
    assert "| llama.cpp llama-server b1 | ✅ 1/1 | not tested | ❌ 0/1 (cut off) |" in table
    assert "1 of 2 compatibility tests passed" in table
    # The rest of the page is kept.
    assert text.startswith("# Compatibility") and "## Departures from the spec" in text


# Names of the public surfaces the API page cannot show, and why.
NOT_RENDERED = {
    # Dunder names are left out of every page by the handler's filter.
    "__version__",
    # Bound by unpacking a tuple (``A, B = ...``), which static analysis cannot attribute.
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE",
}

_BUILD = """
import sys
from mkdocs.__main__ import cli
try:
    cli(["build", "--strict", "--site-dir", sys.argv[1]])
except SystemExit as exit:
    if exit.code:
        raise
heavy = sorted(m for m in ("ray", "pyspark", "pyarrow") if m in sys.modules)
assert not heavy, f"building the site imported {heavy}"
"""


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return site


def test_the_site_builds_strict_without_ray_or_spark(built_site: Path) -> None:
    for page in ("index.html", "getting-started/index.html", "search/search_index.json"):
        assert (built_site / page).is_file(), page
    assert (built_site / "screenshots" / "09-runs-done.png").is_file()


def test_the_python_api_page_shows_every_public_name(built_site: Path) -> None:
    import openai_compat
    import openai_compat.batch
    import openai_compat.ray
    import openai_compat.spark

    html = (built_site / "python-api" / "index.html").read_text(encoding="utf-8")
    missing = [
        f"{module.__name__}.{name}"
        for module in (openai_compat, openai_compat.batch, openai_compat.ray, openai_compat.spark)
        for name in module.__all__
        if name not in NOT_RENDERED and f'id="{module.__name__}.{name}"' not in html
    ]
    assert missing == []


def test_the_generated_pages_are_in_the_site(built_site: Path) -> None:
    cli = (built_site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--max-cost" in cli and "--spark-master" in cli
    http = (built_site / "app" / "http-api" / "index.html").read_text(encoding="utf-8")
    assert "/api/v1/connectors/{connector_id}/execute_model" in http
    assert "<!-- generated:" not in cli + http


def test_every_environment_variable_of_the_package_is_documented() -> None:
    used = {
        name
        for path in (ROOT / "src" / "openai_compat").rglob("*.py")
        for name in re.findall(r"OPENAI_COMPAT_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8"))
    }
    assert len(used) >= 10
    table = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert sorted(n for n in used if f"| `{n}` |" not in table) == []


CHROMIUM = "/usr/bin/chromium"


def test_a_newcomer_finds_the_guide_from_the_web_page(built_site: Path, tmp_path: Path) -> None:
    """The application serves the built site: from the sign-in card to a search of the guide,
    in a real Chromium, with nothing blocked by the pages' policy and nothing from outside."""
    from playwright.sync_api import sync_playwright

    from tests.app_support import AppProcess

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: make test installs it"
    app = AppProcess(tmp_path / "data", env={"OPENAI_COMPAT_GUIDE_DIR": str(built_site)})
    blocked: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
            )
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda request: requests.append(request.url))
            page.on(
                "console",
                lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(app.url + "/")
            page.click("text=Read the guide")
            page.wait_for_url(app.url + "/guide/")
            page.click("nav >> text=Getting started")
            page.wait_for_url(app.url + "/guide/getting-started/")
            assert "llama-server" in page.content()
            # The theme's search runs (a worker from the site, its index fetched).
            page.keyboard.press("/")
            page.keyboard.type("resume")
            page.wait_for_selector(".md-search-result__item", timeout=15_000)
            browser.close()
    finally:
        app.stop()
    assert blocked == [] and errors == []
    assert [u for u in requests if not u.startswith((app.url, "data:", "blob:"))] == []
