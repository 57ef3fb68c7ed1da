# The two commands a new user needs: `make demo` and `make test`.
.PHONY: setup demo test lint unit gas bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/channeld demo

test: setup lint
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check channeld tests benchmarks
	.venv/bin/mypy

gas: setup
	.venv/bin/python benchmarks/gas.py

bench: setup
	.venv/bin/python -m benchmarks

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache
