VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench bench-batch clean

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
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) bench/stream_parse.py
	$(PY) bench/request_overhead.py

# Batch runs: 20,000 rows at 20 ms / concurrency 64 against the ideal and the SDK loop, then
# peak memory over 1,000,000 rows (several minutes; figures in docs/batch.md).
bench-batch: $(STAMP)
	$(PY) bench/batch.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .mypy_cache .pytest_cache .ruff_cache
