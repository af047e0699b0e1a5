# Two entry points a new user needs (see README): `make run` and `make test`.
# Each creates .venv if missing and installs what it needs, so both work on a fresh clone.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The main job on the embedded default (SQLite, no server): check the store end to end.
run: $(BIN)/pip
	$(BIN)/pip install --quiet -e .
	$(BIN)/storage backends
	$(BIN)/storage doctor

# The whole suite (unit, conformance, integration against real SQLite files and private
# redis-server processes), then the coverage floor for each distribution.
test: $(BIN)/pip
	$(BIN)/pip install --quiet -e . -e './storage_redis[hiredis]' -e ./examples/storage-memory --group dev
	$(BIN)/coverage erase
	$(BIN)/pytest --cov --cov-report=
	# Child processes (process contention, crash tests) may finish writing after pytest-cov combined.
	-$(BIN)/coverage combine --append --quiet
	$(BIN)/coverage report --include='storage_core/*,storage_local/*' --fail-under=95
	$(BIN)/coverage report --include='storage_redis/*' --fail-under=95
	$(BIN)/coverage report --include='examples/storage-memory/*' --fail-under=95

lint: $(BIN)/pip
	$(BIN)/pip install --quiet -e . -e './storage_redis[hiredis]' -e ./examples/storage-memory --group dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BIN)/pip
	$(BIN)/pip install --quiet -e . -e './storage_redis[hiredis]' -e ./examples/storage-memory --group dev
	$(BIN)/python bench/bench_local.py
	$(BIN)/python bench/bench_redis.py

clean:
	rm -rf $(VENV) .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache
