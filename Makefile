.PHONY: help install lint format typecheck test bench
help:            ## list targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/ —/'
install:         ## install the workspace (all members + dev tools)
	uv sync
lint:            ## ruff lint + format check
	uv run ruff check . && uv run ruff format --check .
format:          ## apply ruff formatting and autofixes
	uv run ruff check --fix . && uv run ruff format .
typecheck:       ## mypy (strict) over every member
	bash .ci/typecheck.sh
test:            ## the full test suite against real Postgres/Redis
	uv run pytest
bench:           ## run every benchmark and write bench/results/
	uv run roadmap bench
