# Two entry points a new user needs (see README): `make run` and `make test`.
# Each creates .venv if missing and installs what it needs, so both work on a fresh clone.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest-xdist workers: one more than the CPUs, as most tests wait on servers and child
# processes (on 2 cores: 3 workers, 2.2x faster than one). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

.PHONY: run test test-editable test-installed dev lint bench clean

$(BIN)/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The main job on the embedded default (SQLite, no server): agent processes sharing a task
# queue through leases, one killed mid-task and its task taken over; exits 1 if a check fails.
run: $(BIN)/pip
	$(BIN)/pip install --quiet -e .
	$(BIN)/storage demo

# The whole suite twice: on the editable checkout with the coverage floor for each
# distribution, then on the sdists and wheels users install (built into a temporary dir,
# installed in a fresh venv outside the checkout, run from elsewhere: .ci/test-installed).
test: test-editable test-installed

# Unit, conformance and integration tests (real SQLite files, private redis-server
# processes) on the editable install, with coverage.
test-editable: dev
	$(BIN)/pip install --quiet -e './storage_redis[hiredis]' --group dev
	$(BIN)/coverage erase
	$(BIN)/pytest -n $(TEST_WORKERS) --cov --cov-report=
	# Child processes (process contention, crash tests) may finish writing after pytest-cov combined.
	-$(BIN)/coverage combine --append --quiet
	$(BIN)/coverage report --include='storage_core/*,storage_local/*' --fail-under=95
	$(BIN)/coverage report --include='storage_redis/*' --fail-under=95
	$(BIN)/coverage report --include='examples/storage-memory/*' --fail-under=95

test-installed: dev
	$(BIN)/pip install --quiet --group dev
	BUILDER=$(BIN)/python PYTHON=$(PYTHON) .ci/test-installed -n $(TEST_WORKERS)

# A working checkout: both distributions editable (storage-redis is on no index, so
# `pip install -e '.[redis]'` cannot find it; a release installs with `pip install 'storage-core[redis]'`).
dev: $(BIN)/pip
	$(BIN)/pip install --quiet -e . -e ./storage_redis
	if [ -f examples/storage-memory/pyproject.toml ]; then $(BIN)/pip install --quiet -e ./examples/storage-memory; fi

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
