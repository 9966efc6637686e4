# The two commands of the README, and a few conveniences.
.PHONY: up test lint clean

up:          ## start everything (genqueue up)
	./scripts/up

test:        ## ruff, mypy and the whole pytest suite
	./scripts/test

lint:        ## ruff and mypy only
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

clean:       ## remove the virtualenv and caches (not your data dir)
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
