"""The openai Node SDK (from the npm registry) runs a batch's whole lifecycle once.

The SDK is installed with npm, once, into ``~/.cache/openai-compat/node-openai-<major>/``
(``XDG_CACHE_HOME`` moves it); the script below is plain CommonJS, run by the machine's
Node against ``openai-compat serve`` with the application's token as its API key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from openai_compat.testing import MockServer
from tests.app_support import AppProcess
from tests.conftest import make_config

_SDK = "openai@^7"
_SCRIPT = r"""
const fs = require("fs");
const OpenAI = require("openai");
const client = new OpenAI({ baseURL: process.env.APP_URL + "/v1", apiKey: process.env.APP_TOKEN,
                            maxRetries: 0 });
(async () => {
  const file = await client.files.create({ file: fs.createReadStream(process.argv[2]),
                                           purpose: "batch" });
  let batch = await client.batches.create({ input_file_id: file.id,
    endpoint: "/v1/chat/completions", completion_window: "24h",
    metadata: { connector: "node" } });
  const created = batch.status;
  while (!["completed", "failed", "cancelled", "expired"].includes(batch.status)) {
    await new Promise((r) => setTimeout(r, 100));
    batch = await client.batches.retrieve(batch.id);
  }
  const content = await (await client.files.content(batch.output_file_id)).text();
  let notFound = null;
  try { await client.batches.retrieve("batch_missing"); }
  catch (e) { notFound = { name: e.constructor.name, status: e.status }; }
  const page = await client.batches.list({ limit: 1 });
  console.log(JSON.stringify({ created, batch, content, notFound,
                               listed: page.data.map((b) => b.id) }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""


def _sdk_dir() -> Path:
    """The Node SDK, installed from the npm registry the first time."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node and npm are needed: tools/install_system_packages.sh installs them")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "openai-compat" / "node-openai-7"
    if not (folder / "node_modules" / "openai" / "package.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(folder),
                _SDK,
            ],
            check=True,
            timeout=600,
        )
    return folder


def test_the_node_sdk_runs_a_batch(tmp_path: Path) -> None:
    sdk = _sdk_dir()
    with MockServer() as server:
        app = AppProcess(tmp_path / "data")
        try:
            request = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
            config = make_config(server.url, request_format=request)
            with app.client() as client:
                created = client.post(
                    "/api/v1/connectors", json={"name": "node", "configuration": config}
                )
                assert created.status_code == 201, created.text
            lines = [
                {
                    "custom_id": f"n-{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]},
                }
                for i in range(12)
            ]
            requests = tmp_path / "requests.jsonl"
            requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
            script = tmp_path / "lifecycle.cjs"
            script.write_text(_SCRIPT)
            env = {
                **os.environ,
                "NODE_PATH": str(sdk / "node_modules"),
                "APP_URL": app.url,
                "APP_TOKEN": app.token,
            }
            done = subprocess.run(
                ["node", str(script), str(requests)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            report: dict[str, Any] = json.loads(done.stdout)
        finally:
            app.stop()
    batch = report["batch"]
    assert report["created"] == "validating"
    assert batch["status"] == "completed" and batch["object"] == "batch"
    assert batch["request_counts"] == {"total": 12, "completed": 12, "failed": 0}
    output = [json.loads(x) for x in report["content"].splitlines()]
    assert sorted(x["custom_id"] for x in output) == sorted(f"n-{i}" for i in range(12))
    assert report["notFound"] == {"name": "NotFoundError", "status": 404}
    assert report["listed"] == [batch["id"]]
