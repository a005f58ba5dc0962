# Two commands on a fresh machine: `make run` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Clerk's JS SDK, a test-only oracle for the session-token tests (tests/oracle/).
ORACLE := tests/oracle/node_modules/.installed

.PHONY: run test lint bench package terraform-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run every function on 127.0.0.1:8080 with an embedded Postgres and local keys.
run: $(STAMP)
	$(BIN)/cosma serve

$(ORACLE): tests/oracle/package.json tests/oracle/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/oracle && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the tests against Clerk's JS SDK will be skipped"; fi

## The whole suite against a throwaway Postgres (or TEST_DATABASE_URL).
test: $(STAMP) $(ORACLE)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check shared functions cosma tests bench scripts
	$(BIN)/ruff format --check shared functions cosma
	$(BIN)/mypy shared functions cosma
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

package: $(STAMP)
	$(BIN)/python scripts/package.py

terraform-check: $(STAMP)
	bash scripts/terraform_checks.sh

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
