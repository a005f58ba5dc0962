# Two commands on a fresh machine: `make run` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The official ad-platform SDKs (tests/conformance/): large, installed once per venv.
CONFORMANCE := $(VENV)/.conformance

.PHONY: run test conformance lint bench package terraform-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run every function on 127.0.0.1:8080 with an embedded Postgres and local keys.
run: $(STAMP)
	$(BIN)/cosma serve

$(CONFORMANCE): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,conformance]'
	touch $(CONFORMANCE)

## The whole suite against a throwaway Postgres (or TEST_DATABASE_URL), the
## conformance tests against the platforms' official SDKs included.
test: $(CONFORMANCE)
	$(BIN)/pytest -q

## Only the conformance tests: our connectors and fakes against the official SDKs.
conformance: $(CONFORMANCE)
	$(BIN)/pytest -q tests/conformance

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
