VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-compat lint typecheck pytest bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on embedded defaults: for now, the bundled scripted server answers one
# streamed question through the connector (no outside network).
run: $(STAMP)
	$(PY) -m openai_compat.demo

test: lint typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests $(wildcard bench)
	$(VENV)/bin/ruff format --check src tests $(wildcard bench)

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

# The compatibility tier: real LiteLLM proxy, llama.cpp llama-server and llmock on 127.0.0.1.
# llama-server is built once (minutes) and cached in ~/.cache/openai-compat/llama-server-<ver>/.
# The table in docs/compat.md is rewritten from the outcomes, even when a test fails.
COMPAT_STAMP := $(VENV)/.compat-installed

$(COMPAT_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,compat]'
	touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(PY) tools/build_llama_server.py
	$(VENV)/bin/pytest -q -m compat tests/compat; status=$$?; \
	  $(PY) tools/compat_table.py build/compat-results.json docs/compat.md && exit $$status

bench: $(STAMP)
	$(PY) bench/stream_parse.py
	$(PY) bench/request_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .pytest_cache .ruff_cache
