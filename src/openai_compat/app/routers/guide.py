"""The guide (``/guide/``): the documentation site, served from the directory ``make docs``
builds, or a page that says how to build it.

The directory is ``OPENAI_COMPAT_GUIDE_DIR``, else ``site`` in the current directory (where
``make run`` starts the application), looked up on every request: a site built after the
start is served without a restart. Outside the OpenAPI document and without the token, as
the web page is.

The generated site's pages hold a few inline scripts (the theme's), which the application's
policy (``'self'`` only) would block. Each page is sent with that policy plus the SHA-256
of each of its own inline scripts, so exactly those run and nothing injected into a page
could (no ``'unsafe-inline'``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ..http.page_headers import CONTENT_SECURITY_POLICY

__all__ = ["GUIDE_PATH", "guide_dir", "page_policy", "router"]

GUIDE_PATH = "/guide"

# An inline script: no src, and a type a browser runs (a JSON data block is never run).
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", re.DOTALL)
_DATA_TYPE = re.compile(r"""\btype=["']?application/(?:ld\+)?json""")

_NOT_BUILT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>openai-compat: the guide is not built</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/app.css"></head>
<body><main>
<h1>The guide has not been built</h1>
<p>The guide is a documentation site made from the <code>docs/</code> folder of the
checkout. Build it there with</p>
<pre><code>make docs</code></pre>
<p>which writes it into <code>site/</code>, and reload this page. To serve a site built
elsewhere, start the application with <code>OPENAI_COMPAT_GUIDE_DIR</code> set to its
folder. The same pages are in <code>docs/*.md</code>, readable as they are.</p>
<p><a href="/">Back to the application</a></p>
</main></body>
</html>
"""

router = APIRouter(include_in_schema=False)


def guide_dir() -> Path:
    """Where the built site is looked for (it may not exist)."""
    configured = os.environ.get("OPENAI_COMPAT_GUIDE_DIR", "").strip()
    return Path(configured).expanduser() if configured else Path.cwd() / "site"


def page_policy(html: str) -> str:
    """The application's policy, plus the hash of each inline script of ``html``.

    >>> page_policy("<p>no script</p>") == CONTENT_SECURITY_POLICY
    True
    >>> "script-src 'self' 'sha256-" in page_policy("<script>let a = 1</script>")
    True
    """
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
            for attributes, body in _INLINE_SCRIPT.findall(html)
            if not _DATA_TYPE.search(attributes)
        }
    )
    if not hashes:
        return CONTENT_SECURITY_POLICY
    return f"{CONTENT_SECURITY_POLICY}; script-src 'self' {' '.join(hashes)}"


def _send(path: Path, status_code: int = 200) -> Response:
    if path.suffix != ".html":
        return FileResponse(path, status_code=status_code)
    html = path.read_text(encoding="utf-8", errors="replace")
    return HTMLResponse(
        html, status_code=status_code, headers={"Content-Security-Policy": page_policy(html)}
    )


def _file(root: Path, path: str) -> Path | None:
    """The file of the site that ``path`` names, never one outside ``root``."""
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root):
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


@router.get(GUIDE_PATH)
async def guide_root() -> Response:
    # The site's links are relative: its pages must be read under /guide/.
    return RedirectResponse(f"{GUIDE_PATH}/", status_code=307)


@router.get(GUIDE_PATH + "/{path:path}")
async def guide(path: str) -> Response:
    root = guide_dir().resolve()
    if not (root / "index.html").is_file():
        return HTMLResponse(_NOT_BUILT, status_code=404)
    found = _file(root, path)
    if found is not None:
        return _send(found)
    missing = root / "404.html"
    if missing.is_file():
        return _send(missing, status_code=404)
    return HTMLResponse("<h1>Not found</h1>", status_code=404)
