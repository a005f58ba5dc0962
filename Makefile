# Two commands on a fresh machine: `make run` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Clerk's JS SDK, a test-only oracle for the session-token tests (tests/oracle/).
ORACLE := tests/oracle/node_modules/.installed
# Tool environments live in .tools/, apart from the local server's state in .cosma/.
TOOLS := .tools
UV_VERSION := 0.13.8
UV := $(TOOLS)/uv/bin/uv
UV_STAMP := $(TOOLS)/uv/.installed-$(UV_VERSION)
# The official ad-platform SDKs (tests/conformance/): large, installed once per venv.
CONFORMANCE := $(VENV)/.conformance

.PHONY: run test conformance lint bench soak package lock terraform-check clean

# Everything comes from requirements.lock (exact versions, hash-checked); the project
# itself is installed on top without resolving anything else.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## Re-resolve requirements.lock and requirements-deploy.lock after pyproject.toml changes.
lock: $(UV_STAMP)
	$(PYTHON) scripts/lock.py --uv $(UV)

$(UV_STAMP):
	rm -rf $(TOOLS)/uv
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet 'uv==$(UV_VERSION)'
	touch $@

## Run every function on 127.0.0.1:8080 with an embedded Postgres and local keys.
run: $(STAMP)
	$(BIN)/cosma serve

$(ORACLE): tests/oracle/package.json tests/oracle/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/oracle && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the tests against Clerk's JS SDK will be skipped"; fi

# The conformance extra stays out of the lock (as bench does), so `make run` never
# installs google-ads; its SDKs are pinned exactly in pyproject.toml and everything
# they share with the project is held to the lock's versions.
$(CONFORMANCE): $(STAMP)
	$(BIN)/python scripts/extra_requirements.py conformance > $(VENV)/conformance.txt
	$(BIN)/pip install --quiet -r $(VENV)/conformance.txt
	touch $(CONFORMANCE)

## The whole suite against a throwaway Postgres (or TEST_DATABASE_URL), the
## conformance tests against the platforms' official SDKs included.
test: $(CONFORMANCE) $(ORACLE)
	$(BIN)/pytest -q

## Only the conformance tests: our connectors and fakes against the official SDKs.
conformance: $(CONFORMANCE)
	$(BIN)/pytest -q tests/conformance

lint: $(STAMP)
	$(BIN)/ruff check shared functions cosma tests bench scripts soak
	$(BIN)/ruff format --check shared functions cosma tests bench scripts soak
	$(BIN)/mypy shared functions cosma soak
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python scripts/extra_requirements.py bench > $(VENV)/bench.txt
	$(BIN)/pip install --quiet -r $(VENV)/bench.txt
	$(BIN)/python -m bench

## Four servers on one database under mixed load and faults, then every invariant checked
## (docs/reliability.md). SOAK_SECONDS of load (3 minutes by default); SOAK_TTL is the
## membership cache's bound the servers run with and the removals are held to.
SOAK_SECONDS ?= 180
SOAK_TTL ?= 30
soak: $(STAMP)
	$(BIN)/python -m soak --seconds $(SOAK_SECONDS) --principal-ttl $(SOAK_TTL)

package: $(STAMP)
	$(BIN)/python scripts/package.py

terraform-check: $(STAMP)
	bash scripts/terraform_checks.sh

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
