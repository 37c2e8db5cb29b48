"""The guide under ``/guide/``: the built site when there is one, how to build it when not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openai_compat.app import AppSettings, create_app
from openai_compat.app.http.page_headers import CONTENT_SECURITY_POLICY
from openai_compat.app.routers.guide import _file, page_policy


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    application = create_app(
        AppSettings(data_dir=tmp_path_factory.mktemp("guide-app"), token="t" * 32)
    )
    yield application
    application.state.container.services.store.engine.dispose()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A built site, as mkdocs lays one out, named by OPENAI_COMPAT_GUIDE_DIR."""
    (tmp_path / "getting-started").mkdir()
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(
        '<h1>openai-compat guide</h1><script>var theme = "light"</script>'
        '<script id="__config" type="application/json">{"base": "."}</script>'
        '<script src="assets/bundle.js"></script>'
    )
    (tmp_path / "getting-started" / "index.html").write_text("<h1>Getting started</h1>")
    (tmp_path / "assets" / "site.css").write_text("body { margin: 0 }")
    (tmp_path / "404.html").write_text("<h1>No such page</h1>")
    (tmp_path.parent / "secret.txt").write_text("outside the site")
    monkeypatch.setenv("OPENAI_COMPAT_GUIDE_DIR", str(tmp_path))
    return tmp_path


def test_the_built_site_is_served_without_the_token(app: FastAPI, site: Path) -> None:
    client = TestClient(app)
    home = client.get("/guide/")
    assert home.status_code == 200
    assert "openai-compat guide" in home.text
    assert home.headers["content-type"].startswith("text/html")
    assert home.headers["x-frame-options"] == "DENY"
    page = client.get("/guide/getting-started/")
    assert page.status_code == 200 and "Getting started" in page.text
    css = client.get("/guide/assets/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_a_page_may_run_its_own_inline_scripts_and_no_other(app: FastAPI, site: Path) -> None:
    client = TestClient(app)
    policy = client.get("/guide/").headers["content-security-policy"]
    # sha256 of `var theme = "light"`; the JSON block is data, and needs no hash.
    digest = "'sha256-XUhpX07VPwOwT0W6e8WrRNnwXBrcASgAKgQ/Wy3x+2E='"
    assert policy == f"{CONTENT_SECURITY_POLICY}; script-src 'self' {digest}"
    assert "unsafe-inline" not in policy
    assert policy == page_policy((site / "index.html").read_text())
    # A page without inline scripts, and any other file, keep the application's policy.
    for path in ("/guide/getting-started/", "/guide/assets/site.css"):
        assert client.get(path).headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_guide_without_a_slash_redirects_so_relative_links_resolve(
    app: FastAPI, site: Path
) -> None:
    answer = TestClient(app).get("/guide", follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"] == "/guide/"


def test_a_missing_page_is_the_sites_404(app: FastAPI, site: Path) -> None:
    answer = TestClient(app).get("/guide/no-such-page/")
    assert answer.status_code == 404
    assert "No such page" in answer.text


def test_nothing_outside_the_site_is_served(app: FastAPI, site: Path) -> None:
    root = site.resolve()
    assert _file(root, "../secret.txt") is None
    assert _file(root, "getting-started/../../secret.txt") is None
    assert _file(root, "getting-started") == root / "getting-started" / "index.html"
    answer = TestClient(app).get("/guide/%2e%2e/secret.txt")
    assert answer.status_code == 404
    assert "outside the site" not in answer.text


def test_before_it_is_built_the_guide_says_how_to_build_it(
    app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_COMPAT_GUIDE_DIR", str(tmp_path / "not-built"))
    answer = TestClient(app).get("/guide/")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "make docs" in answer.text and "OPENAI_COMPAT_GUIDE_DIR" in answer.text


def test_the_guide_defaults_to_site_in_the_current_directory(
    app: FastAPI, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_COMPAT_GUIDE_DIR")
    monkeypatch.chdir(site.parent)
    site.rename(site.parent / "site")
    answer = TestClient(app).get("/guide/getting-started/")
    assert answer.status_code == 200 and "Getting started" in answer.text


def test_the_web_page_links_to_the_guide(app: FastAPI) -> None:
    page = TestClient(app).get("/")
    assert page.text.count('href="/guide/"') == 2  # on the sign-in card and in the top bar


def test_the_guide_is_not_part_of_the_api_document(app: FastAPI) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/guide")]
