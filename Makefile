# The project's only task runner. `make` (or `make help`) lists the targets.
VENV ?= .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install test lint fmt typecheck db-upgrade ci bench openapi

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN { FS = ":.*## " } { printf "  %-12s %s\n", $$1, $$2 }'

install: ## Create the venv if needed and pip install -e '.[dev]' into it
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'

test: ## Run the tests (SQLite and a real PostgreSQL) with pytest -n 2
	$(BIN)/pytest -n 2

lint: ## ruff check, ruff format --check (src, tests, bench) and lint-imports
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

fmt: ## Format and autofix: ruff format, then ruff check --fix
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: ## Type-check with mypy (strict, configured in pyproject.toml)
	$(BIN)/mypy

openapi: ## Regenerate the committed openapi.json from the app (scripts/openapi.py --write)
	$(BIN)/python scripts/openapi.py --write

db-upgrade: ## Migrate the configured registry database to the latest schema
	$(BIN)/modelreg db upgrade

ci: ## Run the full CI pipeline locally (bash .ci/run; installs packages as root)
	bash .ci/run

bench: ## modelreg vs MLflow side by side (bench/compare.py; e.g. ARGS="--quick --json out.json")
	$(BIN)/python bench/compare.py $(ARGS)
