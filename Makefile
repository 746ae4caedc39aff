# The two commands of the README: `make bench` (the main job) and `make test`.
# Each does its own idempotent setup.
.PHONY: setup setup-test bench test lint up down clean

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

bench: setup
	@scripts/bench.sh

test: setup-test
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .

up: setup
	.venv/bin/kl up

down:
	.venv/bin/kl down

clean: down
	rm -rf .kl reports
