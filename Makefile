VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The site's build code, checked by ruff with the package.
DOCS_TOOLS := tools/docs_hooks.py tools/griffe_doctests.py tools/compat_table.py
# import-linter in an environment of its own (pyproject.toml's `lint` extra says why): it
# reads the package's source from src/, so the package is not installed there.
LINT_VENV := .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed

.PHONY: run demo docs docs-serve docs-check test test-compat system-packages system-packages-compat lint typecheck pytest bench bench-app bench-batch screenshots clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(LINT_STAMP): pyproject.toml
	python3 -m venv $(LINT_VENV)
	python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["lint"], sep="\n")' \
	  | xargs $(LINT_VENV)/bin/pip install --quiet
	touch $(LINT_STAMP)

# The main job on embedded defaults: the application (HTTP API + web page) on
# 127.0.0.1:8000, SQLite in the per-user data directory (OPENAI_COMPAT_DATA_DIR overrides).
# It prints the address and how to sign in; no outside network is needed.
run: $(STAMP)
	$(VENV)/bin/openai-compat serve --host 127.0.0.1 --port 8000

# The connector alone: the bundled scripted server answers one streamed question.
demo: $(STAMP)
	$(PY) -m openai_compat.demo

# The system packages the suite drives for real (PostgreSQL, Chromium, Java), installed with apt-get
# (through sudo when not root) only when missing; see tools/install_system_packages.sh.
system-packages:
	bash tools/install_system_packages.sh main

test: system-packages lint typecheck docs-check pytest

lint: $(STAMP) $(LINT_STAMP)
	$(VENV)/bin/ruff check src tests $(DOCS_TOOLS) $(wildcard bench)
	$(VENV)/bin/ruff format --check src tests $(DOCS_TOOLS) $(wildcard bench)
	PYTHONPATH=src $(LINT_VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) system-packages
	$(VENV)/bin/pytest -q

# The compatibility tier: real LiteLLM proxy, llama.cpp llama-server, llmock and Hugging Face
# transformers serve on 127.0.0.1.
# llama-server is built once (minutes) and cached in ~/.cache/openai-compat/llama-server-<ver>/.
# The table of docs/compat.md is rewritten from the outcomes, even when a test fails.
COMPAT_STAMP := $(VENV)/.compat-installed

$(COMPAT_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,compat]'
	touch $(COMPAT_STAMP)

# cmake, g++ and make build llama-server.
system-packages-compat:
	bash tools/install_system_packages.sh compat

# `transformers serve` in an environment of its own (pyproject.toml's `tfserve` extra says why).
TFS_VENV := .venv-tfserve
TFS_STAMP := $(TFS_VENV)/.installed

$(TFS_STAMP): pyproject.toml
	python3 -m venv $(TFS_VENV)
	python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["tfserve"], sep="\n")' \
	  | xargs $(TFS_VENV)/bin/pip install --quiet
	touch $(TFS_STAMP)

test-compat: system-packages-compat $(COMPAT_STAMP) $(TFS_STAMP)
	$(PY) tools/build_llama_server.py
	TRANSFORMERS_SERVE_VENV=$(abspath $(TFS_VENV)) $(VENV)/bin/pytest -q -m compat tests/compat; status=$$?; \
	  $(PY) tools/compat_table.py build/compat-results.json docs/compat.md && exit $$status

# The documentation site (mkdocs-material) into site/; the application serves it at /guide/.
# The command line and HTTP API pages are generated from the code as it builds.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The site on http://127.0.0.1:8001/, rebuilt on every change.
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

# What make test checks of the site: it builds with no warning (no broken link or anchor, no
# page left out), into a scratch directory so that site/ stays as make docs left it. The
# examples of the pages run in pytest (tests/docs).
docs-check: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site-check

bench: $(STAMP)
	$(PY) bench/stream_parse.py
	$(PY) bench/request_overhead.py

# The application vs the connector directly: added latency, 100 concurrent streams.
bench-app: $(STAMP)
	$(PY) bench/app.py

# Re-take the screenshots of the web page in docs/screenshots (headless Chromium, as in the test).
screenshots: $(STAMP) system-packages
	OPENAI_COMPAT_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q tests/app/test_app_browser.py tests/app/test_app_runs_browser.py

# Batch runs: 20,000 rows at 20 ms / concurrency 64 against the ideal and the SDK loop, then
# peak memory over 1,000,000 rows (several minutes; figures in docs/performance.md).
bench-batch: $(STAMP)
	$(PY) bench/batch.py

clean:
	rm -rf $(VENV) $(LINT_VENV) $(TFS_VENV) build site *.egg-info src/*.egg-info .mypy_cache .pytest_cache .ruff_cache
