# Parley developer commands. Only Python 3.11+ and make are needed: the first target that
# needs them creates .venv and installs the pinned dependencies.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
export FLASK_APP := wsgi.py

.PHONY: help run test lint format migrate upgrade check-migrations bench soak clean

help:
	@echo "make run      - install, migrate the SQLite database and serve on http://127.0.0.1:5000"
	@echo "make test     - the whole suite on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set"
	@echo "make lint     - ruff, ruff format --check, mypy and import-linter"
	@echo "make migrate  - autogenerate a migration: make migrate m='what changed'"
	@echo "make upgrade  - apply migrations to DATABASE_URL (default instance/parley.db)"
	@echo "make bench    - benchmarks on PostgreSQL: HTTP against a bare-Flask ceiling, event latency,"
	@echo "                10,000 event streams at once"
	@echo "make soak     - five minutes of mixed traffic: errors by status, worker memory growth"

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/flask db upgrade
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# Coverage of app/, lines and branches, >= 95%: of the SQLite pass alone on a machine with only
# Python and make, and of both passes summed when TEST_DATABASE_URL is set (CI).
test: $(BIN)/.installed
	rm -f .coverage
	TEST_DATABASE_URL= $(PY) -m pytest --cov --cov-report= $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $${TEST_DATABASE_URL%%@*}@..."; \
		$(PY) -m pytest --cov --cov-append --cov-report= $(PYTEST_ARGS) || exit $$?; \
	else \
		echo "== TEST_DATABASE_URL is not set: PostgreSQL run skipped"; \
	fi
	$(PY) -m coverage report --fail-under=95

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app config.py
	$(BIN)/lint-imports

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(BIN)/.installed
	$(BIN)/flask db migrate -m "$(m)"

upgrade: $(BIN)/.installed
	$(BIN)/flask db upgrade

check-migrations: $(BIN)/.installed
	$(BIN)/flask db check

# Benchmarks run on fresh PostgreSQL databases of their own (BENCH_ADMIN_URL, default the local
# server) and are never part of the pass/fail test run. They need wrk (apt-get install wrk), and
# the real-time part needs redis-server and a hard file-descriptor limit of 12,048 (ulimit -Hn).
bench: $(BIN)/.installed
	$(PY) scripts/bench_http.py
	$(PY) scripts/bench_cpu.py
	$(PY) scripts/bench_events.py
	$(PY) scripts/bench_realtime.py

# Five minutes of mixed traffic over every endpoint against gunicorn on a fresh PostgreSQL
# database; fails on any 5xx or on 10 % worker memory growth. SOAK_ARGS="--minutes 1" shortens it.
soak: $(BIN)/.installed
	$(PY) scripts/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
