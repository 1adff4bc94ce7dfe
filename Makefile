# The two README commands. Both run the idempotent set-up first.
.PHONY: setup report test lint bench

setup:
	@bash scripts/setup.sh

report: setup
	.venv/bin/archviz report -o reports
	@echo
	@echo "archviz is installed in .venv/bin. To put it on your PATH in this shell, run:"
	@echo "    . .venv/bin/activate"

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: lint
	@bash scripts/setup.sh --with-browser
	.venv/bin/pytest -n 2 -q
